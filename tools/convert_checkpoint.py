#!/usr/bin/python3
"""Converts an official VAR / VQ-VAE checkpoint (.pth, a pickled state_dict) to safetensors, key names unchanged.

    /usr/bin/python3 tools/convert_checkpoint.py vae_ch160v4096z32.pth vae_ch160v4096z32.safetensors
    /usr/bin/python3 tools/convert_checkpoint.py var_d16.pth var_d16.safetensors

Needs python3-torch and python3-numpy (Debian), nothing else: the safetensors file is written by
tools/golden/safetensors_np.py. The .pth is loaded with torch.load(weights_only=True), which refuses pickles that
would run code. Dtypes are kept (float32 -> F32, float16 -> F16, bfloat16 -> BF16, int64 -> I64); any other dtype is
an error unless --cast-to-f32 is given for float64. The output is read back and compared bit for bit before it is
moved into place; on any error nothing is left at the output path. Exit status: 0 ok, 2 bad input, 1 internal error.
"""
import argparse
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'golden'))
import safetensors_np  # noqa: E402


class InputError(Exception):
    pass


def describe(sd):
    """A one-line guess of what the state_dict is, from its official key names."""
    if 'class_emb.weight' in sd and 'head.weight' in sd:
        depth = 1 + max((int(m.group(1)) for k in sd if (m := re.match(r'blocks\.(\d+)\.', k))), default=-1)
        C = sd['class_emb.weight'].shape[1]
        return f'VAR: depth {depth}, C {C}, classes {sd["class_emb.weight"].shape[0] - 1}, ' \
               f'shared AdaLN {"shared_ada_lin.1.weight" in sd}, L {sd["pos_1LC"].shape[1]}'
    if 'quantize.embedding.weight' in sd and 'decoder.conv_in.weight' in sd:
        V, Cvae = sd['quantize.embedding.weight'].shape
        return f'VQ-VAE: vocab {V}, Cvae {Cvae}, ch {sd["encoder.conv_in.weight"].shape[0] if "encoder.conv_in.weight" in sd else "?"}'
    return 'unrecognised state_dict (converted anyway, key names unchanged)'


def to_numpy(name, t, cast_f64):
    import torch
    t = t.detach().cpu().contiguous()
    if t.dtype == torch.float32:
        return t.numpy().copy()
    if t.dtype == torch.float16:
        return t.numpy().copy()
    if t.dtype == torch.bfloat16:
        return ('BF16', t.view(torch.int16).numpy().view(np.uint16).copy())
    if t.dtype == torch.int64:
        return t.numpy().copy()
    if t.dtype == torch.float64 and cast_f64:
        return t.numpy().astype(np.float32)
    raise InputError(f'tensor "{name}" has dtype {t.dtype}; supported: float32, float16, bfloat16, int64 '
                     f'(float64 with --cast-to-f32)')


def load_checkpoint(path):
    import torch
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as e:  # truncated zip, bad pickle, code-running pickle refused by weights_only
        raise InputError(f'cannot load as a weights-only torch checkpoint: {type(e).__name__}: {e}') from None


def load_state_dict(path):
    import torch
    obj = load_checkpoint(path)
    if isinstance(obj, dict) and not all(isinstance(v, torch.Tensor) for v in obj.values()):
        for key in ('state_dict', 'model', 'module'):
            if isinstance(obj.get(key), dict):
                raise InputError(f'the checkpoint is a training dict; its weights are under "{key}" '
                                 f'(pass --key {key})')
        raise InputError('the checkpoint is not a state_dict (a dict of tensors)')
    if not isinstance(obj, dict) or not obj:
        raise InputError(f'the checkpoint holds a {type(obj).__name__}, not a non-empty state_dict')
    return obj


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('input', help='official .pth checkpoint')
    ap.add_argument('output', help='safetensors file to write')
    ap.add_argument('--key', default=None, help='take the state_dict from this key of a training checkpoint dict')
    ap.add_argument('--cast-to-f32', action='store_true', help='store float64 tensors as F32 (rounded)')
    args = ap.parse_args()
    import torch
    try:
        if not os.path.isfile(args.input):
            raise InputError('no such file')
        if args.key:
            obj = load_checkpoint(args.input)
            if not isinstance(obj, dict) or not isinstance(obj.get(args.key), dict):
                raise InputError(f'no dict under key "{args.key}"')
            sd = obj[args.key]
        else:
            sd = load_state_dict(args.input)
        tensors = {}
        for name, t in sd.items():
            if not isinstance(name, str) or not name or name == '__metadata__':
                raise InputError(f'invalid tensor name {name!r}')
            if not isinstance(t, torch.Tensor):
                raise InputError(f'entry "{name}" is a {type(t).__name__}, not a tensor')
            tensors[name] = to_numpy(name, t, args.cast_to_f32)
    except InputError as e:
        print(f'error: {args.input}: {e}', file=sys.stderr)
        return 2

    tmp = f'{args.output}.convert{os.getpid()}'
    try:
        safetensors_np.save(tmp, tensors, metadata={'format': 'pt', 'source': os.path.basename(args.input)})
        back = safetensors_np.load(tmp)
        for name, v in tensors.items():
            a = v[1] if isinstance(v, tuple) else v
            b = back[name]
            if isinstance(v, tuple):
                b = (b.view(np.uint32) >> 16).astype(np.uint16)
            if a.shape != b.shape or a.tobytes() != np.ascontiguousarray(b).astype(a.dtype, copy=False).tobytes():
                raise RuntimeError(f'read-back mismatch in "{name}"')
        os.replace(tmp, args.output)
    except Exception as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        print(f'error: {args.output}: {e}', file=sys.stderr)
        return 1
    n = sum(int(np.prod((v[1] if isinstance(v, tuple) else v).shape)) for v in tensors.values())
    print(f'{args.output}: {len(tensors)} tensors, {n} values, {os.path.getsize(args.output)} bytes; {describe(sd)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
