#!/usr/bin/python3
"""End to end on the var_tiny fixture, as a user with checkpoints would run it: the VQ-VAE weights are written from
the fixture's manifest by the Python generator, `fpqvar generate --teacher-tokens --dump` runs the C++ model, and
tools/golden/compare_dump.py checks the dump against the official outputs (tolerance 1e-4 of each tensor's max);
a perturbed golden must make compare_dump fail.  Usage: golden_cli_test.py PATH/TO/fpqvar"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, 'tools', 'golden'))
import safetensors_np  # noqa: E402
import synthetic_np  # noqa: E402

FIX = os.path.join(ROOT, 'tests', 'fixtures', 'var_tiny')
COMPARE = os.path.join(ROOT, 'tools', 'golden', 'compare_dump.py')
fpqvar = sys.argv[1]
meta = json.load(open(os.path.join(FIX, 'fixture.json')))
cfg = meta['config']
with tempfile.TemporaryDirectory() as d:
    vae = {e['name']: (np.zeros(e['shape'], np.float32) if e['buffer']
                       else synthetic_np.values(meta['weight_seed'], e['name'], tuple(e['shape'])))
           for e in meta['vae_manifest']}
    safetensors_np.save(os.path.join(d, 'vae.safetensors'), vae)
    cmd = [fpqvar, 'generate', '--model', f'var-d{cfg["depth"]}', '--patch-nums', ','.join(map(str, cfg['patch_nums'])),
           '--vae-ch', str(cfg['vae_ch']), '--weights', os.path.join(FIX, f'var_d{cfg["depth"]}.safetensors'),
           '--vae-weights', os.path.join(d, 'vae.safetensors'), '--cfg', str(cfg['cfg']),
           '--teacher-tokens', os.path.join(FIX, 'tokens.safetensors'),
           '--dump', os.path.join(d, 'dump.safetensors'), '--out', os.path.join(d, 'img.png')]
    for label in cfg['labels']:
        cmd += ['--class', str(label)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    print(' '.join(cmd), '\n', r.stdout[-2000:], r.stderr[-2000:])
    if r.returncode != 0:
        sys.exit(f'FAIL: fpqvar generate exited {r.returncode}')
    r = subprocess.run([sys.executable, COMPARE, os.path.join(FIX, 'golden.safetensors'),
                        os.path.join(d, 'dump.safetensors')], capture_output=True, text=True)
    print(r.stdout)
    if r.returncode != 0:
        sys.exit('FAIL: the C++ dump differs from the official outputs')
    golden = safetensors_np.load(os.path.join(FIX, 'golden.safetensors'))
    golden = {k: (v * np.float32(1.001) if k == 'logits.2' else v) for k, v in golden.items()}
    safetensors_np.save(os.path.join(d, 'perturbed.safetensors'), golden)
    r = subprocess.run([sys.executable, COMPARE, os.path.join(d, 'perturbed.safetensors'),
                        os.path.join(d, 'dump.safetensors')], capture_output=True, text=True)
    if r.returncode != 1 or 'logits.2' not in r.stdout.split('> tol')[0].splitlines()[-1]:
        sys.exit(f'FAIL: compare_dump did not flag a 0.1 % change of logits.2 (rc {r.returncode})\n{r.stdout}')
print('ok')
