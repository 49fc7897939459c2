#!/usr/bin/env python3
"""Runs every command block of README.md, so that what the README shows works today.

Which blocks run: fenced code blocks tagged ```sh or ```bash (untagged blocks are listings: usage synopses, layouts).
Each runs as one `bash -e -o pipefail` script in a scratch folder whose entries link to the repository's top-level
entries (tools/, tests/, docs/ ...) and whose build/ links to the build folder, so commands run as written and the
files they write land in the scratch folder.

Skipping: a block containing a line `# check_readme: skip (REASON)` is not run (REASON is required: it names what the
block needs, e.g. the official checkpoints, or why it is too long for CI). A command line ending in that marker is
left out of its block alone.

Small models: CI cannot afford VAR-d16; the table SMALL below rewrites model sizes before running (`simulate`,
`compare` and `sim` run as written: timing simulation is fast at any size; in `generate`
and `trace record` beside `--quantized FILE`, whose file holds the config, `--model var-dN` only becomes the same
name, var-d2), and says so in the output. A block that takes longer than --timeout seconds (after the rewrite) fails with a message asking for a
smaller command or a skip marker, so a new README section cannot silently add minutes to CI.

Usage: tools/check_readme.py [--build DIR] [--readme FILE] [--timeout S] [--list]
Exit status: 0 every block ran or was skipped with a reason; 1 otherwise.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

QUANTIZED_MODEL = re.compile(r' --model var-d\d+')
# The accelerator model's commands run as written: a whole VAR-d30 image simulates in a fraction of a second
# (sim_bench), and they take no --patch-nums / --vae-ch, so the SMALL rewrite below would break them.
AS_WRITTEN = re.compile(r'\b(simulate|compare|sim (config|size))\b')
FROM_FILE = re.compile(r'\b(generate|trace record)\b')
SKIP = re.compile(r'#\s*check_readme:\s*skip\s*\((?P<reason>[^)]+)\)')
# (pattern, replacement, why): applied to every line of a block that runs.
SMALL = [
    (re.compile(r'--model var-d(16|20|24|30|36)\b'), '--model var-d2 --patch-nums 1,2,3 --vae-ch 32',
     'VAR-d16..36 -> depth 2, scales 1-3, VQ-VAE ch 32'),
    (re.compile(r'--epochs \d+'), '--epochs 1', 'GALT epochs -> 1'),
    (re.compile(r'--calib \d+'), '--calib 2', 'calibration images -> 2'),
]


def blocks(text):
    """Yields (first line number, language, lines) for every fenced block."""
    lines = text.split('\n')
    i = 0
    while i < len(lines):
        m = re.match(r'^```(\S*)\s*$', lines[i])
        if not m:
            i += 1
            continue
        lang, start, body = m.group(1), i + 1, []
        i += 1
        while i < len(lines) and not lines[i].startswith('```'):
            body.append(lines[i])
            i += 1
        i += 1
        yield start, lang, body


def scratch_folder(root, build):
    d = tempfile.mkdtemp(prefix='fpqvar_readme_')
    for name in os.listdir(root):
        if name in ('build', '.git') or name.startswith('build-'):
            continue
        os.symlink(os.path.join(root, name), os.path.join(d, name))
    os.symlink(build, os.path.join(d, 'build'))
    return d


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--build', default=os.environ.get('FPQVAR_BUILD_DIR', os.path.join(root, 'build')))
    ap.add_argument('--readme', default=os.path.join(root, 'README.md'))
    ap.add_argument('--timeout', type=float, default=300.0, help='seconds per block (default 300)')
    ap.add_argument('--list', action='store_true', help='print what would run, run nothing')
    args = ap.parse_args()
    fpqvar = os.path.join(args.build, 'tools', 'fpqvar', 'fpqvar')
    if not args.list and not os.access(fpqvar, os.X_OK):
        sys.exit(f'check_readme: {fpqvar} is not built (tools/build.sh first)')
    with open(args.readme, encoding='utf-8') as f:
        text = f.read()

    failures, ran, skipped = 0, 0, 0
    for start, lang, body in blocks(text):
        if lang not in ('sh', 'bash'):
            continue
        where = f'{os.path.basename(args.readme)}:{start}'
        block_skip = next((SKIP.search(l) for l in body if SKIP.search(l) and l.strip().startswith('#')), None)
        if block_skip:
            print(f'{where}: skipped ({block_skip.group("reason")})')
            skipped += 1
            continue
        # Commands: a line and the lines its trailing backslashes continue onto.
        commands, current = [], []
        for line in body:
            current.append(line)
            if not line.rstrip().endswith('\\'):
                commands.append(current)
                current = []
        if current:
            commands.append(current)
        kept, rewrites = [], set()
        for command in commands:
            if any(SKIP.search(l) for l in command):  # a marker on any of its lines leaves the command out
                continue
            joined = '\n'.join(command)
            if FROM_FILE.search(joined) and '--quantized' in joined and QUANTIZED_MODEL.search(joined):
                # generate and trace record take the config from the quantized model file; --model beside it only has
                # to name the same model (eval compares the whole config, so it gets the full rewrite below).
                joined = QUANTIZED_MODEL.sub(' --model var-d2', joined)
                rewrites.add('--model var-d2 beside --quantized')
            for pat, rep, why in SMALL:
                if AS_WRITTEN.search(joined):
                    break
                if pat.search(joined):
                    joined = pat.sub(rep, joined)
                    rewrites.add(why)
            kept.extend(joined.split('\n'))
        if args.list:
            print(f'{where}: would run ({"; ".join(sorted(rewrites)) or "as written"})')
            print('\n'.join('    ' + l for l in kept))
            continue
        folder = scratch_folder(root, os.path.abspath(args.build))
        env = dict(os.environ, PATH=os.path.dirname(fpqvar) + os.pathsep + os.environ.get('PATH', ''))
        t0 = time.monotonic()
        try:
            r = subprocess.run(['bash', '-e', '-o', 'pipefail', '-c', '\n'.join(kept)], cwd=folder, env=env,
                               capture_output=True, text=True, timeout=args.timeout)
            seconds = time.monotonic() - t0
            note = f' [{"; ".join(sorted(rewrites))}]' if rewrites else ''
            if r.returncode == 0:
                print(f'{where}: ok in {seconds:.1f} s{note}')
                ran += 1
            else:
                failures += 1
                print(f'{where}: FAILED (exit {r.returncode}) in {seconds:.1f} s{note}\n--- script\n' + '\n'.join(kept) +
                      f'\n--- stdout (tail)\n{r.stdout[-3000:]}\n--- stderr (tail)\n{r.stderr[-3000:]}')
        except subprocess.TimeoutExpired:
            failures += 1
            print(f'{where}: FAILED: still running after {args.timeout:.0f} s: make the example smaller or mark the '
                  'block "# check_readme: skip (reason)"')
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    if not args.list:
        print(f'check_readme: {ran} block(s) ran, {skipped} skipped with a reason, {failures} failed')
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
