#!/usr/bin/python3
"""Compares a C++ dump (`fpqvar generate --dump FILE`) with a golden file from make_var_tiny.py, tensor by tensor.

    /usr/bin/python3 tools/golden/compare_dump.py /tmp/golden_d16/golden.safetensors dump.safetensors [--tol 1e-4]

For every float tensor present in both files (logits.K, fhat, image, ...) it prints the largest absolute error, the
largest |reference| and their ratio (the relative error the issue's 1e-4 criterion refers to: errors are measured
against the tensor's scale, because elementwise ratios blow up near zero crossings). Integer tensors (tokens.K) must
be equal. Exit status 1 if any ratio exceeds --tol or any shape or integer differs, 2 on unreadable input.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_np  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('golden')
    ap.add_argument('dump')
    ap.add_argument('--tol', type=float, default=1e-4)
    args = ap.parse_args()
    files = []
    for path in (args.golden, args.dump):
        try:
            files.append(safetensors_np.load(path))
        except Exception as e:  # the minimal reader trusts its input; any fault is reported, not trusted
            print(f'error: {path}: cannot read as safetensors: {e}', file=sys.stderr)
            return 2
    ref, got = files
    common = sorted(set(ref) & set(got), key=lambda k: (k.split('.')[0], [int(p) if p.isdigit() else p for p in k.split('.')[1:]]))
    if not common:
        print('error: the files share no tensor names', file=sys.stderr)
        return 2
    bad = 0
    for name in common:
        a, b = ref[name], got[name]
        if a.shape != b.shape:
            print(f'{name:<18} SHAPE {tuple(b.shape)} != golden {tuple(a.shape)}')
            bad += 1
            continue
        if a.dtype.kind == 'i' or b.dtype.kind == 'i':
            n = int((a != b).sum())
            print(f'{name:<18} {"equal" if n == 0 else f"{n} DIFFERENT indices"}')
            bad += n != 0
            continue
        a64, b64 = a.astype(np.float64), b.astype(np.float64)
        err = float(np.abs(a64 - b64).max()) if a.size else 0.0
        scale = float(np.abs(a64).max()) if a.size else 0.0
        ratio = err / scale if scale > 0 else (0.0 if err == 0 else np.inf)
        flag = '' if ratio <= args.tol else '  > tol'
        print(f'{name:<18} max|err| {err:.3g}  max|golden| {scale:.3g}  ratio {ratio:.3g}{flag}')
        bad += ratio > args.tol
    only = sorted(set(ref) ^ set(got))
    if only:
        print(f'(in one file only: {", ".join(only[:12])}{" ..." if len(only) > 12 else ""})')
    print(f'{len(common)} tensors compared, {bad} over tolerance {args.tol:g}')
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
