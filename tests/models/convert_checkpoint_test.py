#!/usr/bin/python3
"""tools/convert_checkpoint.py: a .pth made here from the var_tiny fixture weights converts back to the same bits with
the same key names and dtypes; hostile or unsupported inputs exit with status 2 and leave no output file."""
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, 'tools', 'golden'))
import safetensors_np  # noqa: E402

TOOL = os.path.join(ROOT, 'tools', 'convert_checkpoint.py')
failures = []


def check(cond, what):
    print(('ok   ' if cond else 'FAIL ') + what)
    if not cond:
        failures.append(what)


def run(*args):
    return subprocess.run([sys.executable, TOOL, *args], capture_output=True, text=True)


def header(path):
    with open(path, 'rb') as f:
        (n,) = struct.unpack('<Q', f.read(8))
        return json.loads(f.read(n))


class Evil:
    def __reduce__(self):
        return (os.system, (f'touch {os.path.join(tempfile.gettempdir(), "fpqvar_convert_pwned")}',))


with tempfile.TemporaryDirectory() as d:
    # An official-style F32 state_dict (the fixture's values widened), plus F16/BF16/I64 tensors.
    ref = safetensors_np.load(os.path.join(ROOT, 'tests', 'fixtures', 'var_tiny', 'var_d2.safetensors'))
    sd = {k: torch.from_numpy(v.astype(np.float32) if v.dtype == np.float16 else v.copy()) for k, v in ref.items()}
    sd['extra.f16'] = torch.linspace(-3, 3, 7).half()
    sd['extra.bf16'] = torch.linspace(-3, 3, 7).bfloat16()
    sd['extra.transposed'] = torch.arange(12, dtype=torch.float32).view(3, 4).t()  # non-contiguous
    pth, out = os.path.join(d, 'var_d2.pth'), os.path.join(d, 'var_d2.safetensors')
    torch.save(sd, pth)
    r = run(pth, out)
    check(r.returncode == 0, f'valid checkpoint converts (stdout: {r.stdout.strip()} {r.stderr.strip()})')
    check('VAR: depth 2, C 128' in r.stdout, 'the summary recognises VAR depth 2')
    back = safetensors_np.load(out)
    h = header(out)
    check(set(back) == set(sd), 'key names unchanged')
    for k, t in sd.items():
        want = t.float().numpy() if t.dtype == torch.bfloat16 else t.contiguous().numpy()
        if not np.array_equal(back[k].astype(want.dtype), want, equal_nan=True) or back[k].shape != want.shape:
            check(False, f'values of {k}')
    check(h['extra.f16']['dtype'] == 'F16' and h['extra.bf16']['dtype'] == 'BF16' and h['lvl_1L']['dtype'] == 'I64'
          and h['head.weight']['dtype'] == 'F32', 'dtypes kept')
    check(np.array_equal(back['extra.transposed'], np.arange(12, dtype=np.float32).reshape(3, 4).T),
          'non-contiguous tensor written in logical row-major order')

    def rejected(path, what):
        o = os.path.join(d, 'rejected.safetensors')
        r = run(path, o)
        check(r.returncode == 2 and not os.path.exists(o) and path in r.stderr,
              f'{what}: exit 2, message names the file, no output (rc {r.returncode}: {r.stderr.strip()[:120]})')

    junk = os.path.join(d, 'junk.pth')
    with open(junk, 'wb') as f:
        f.write(os.urandom(1000))
    rejected(junk, 'random bytes')
    with open(pth, 'rb') as f:
        whole = f.read()
    trunc = os.path.join(d, 'trunc.pth')
    with open(trunc, 'wb') as f:
        f.write(whole[:len(whole) // 2])
    rejected(trunc, 'truncated checkpoint')
    notsd = os.path.join(d, 'notsd.pth')
    torch.save({'epoch': 3, 'lr': 0.1}, notsd)
    rejected(notsd, 'dict without tensors')
    i32 = os.path.join(d, 'i32.pth')
    torch.save({'x': torch.arange(3, dtype=torch.int32)}, i32)
    rejected(i32, 'unsupported dtype int32')
    evil = os.path.join(d, 'evil.pth')
    torch.save({'x': Evil()}, evil)
    rejected(evil, 'pickle that would run code')
    check(not os.path.exists(os.path.join(tempfile.gettempdir(), 'fpqvar_convert_pwned')), 'the evil pickle did not run')
    rejected(os.path.join(d, 'missing.pth'), 'missing file')

print(f'{len(failures)} failure(s)')
sys.exit(1 if failures else 0)
