#!/usr/bin/python3
"""A safetensors writer made of numpy + struct + json only (the `safetensors` pip package is not available here).

It is independent of the C++ reader/writer in models/safetensors.cpp, so files it writes cross-check that reader.
Format: u64 little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets}, "__metadata__": {..}}
padded with spaces to a multiple of 8, then the tensors' bytes back to back in name order.

Run as a script, it writes the reader's cross-check file:
    /usr/bin/python3 tools/golden/safetensors_np.py tests/fixtures/safetensors/numpy_written.safetensors
"""
import json
import os
import struct
import sys

import numpy as np

# numpy dtype -> safetensors dtype. BF16 has no numpy dtype: pass ('BF16', uint16 array of raw bit patterns).
_DTYPES = {np.dtype('float32'): 'F32', np.dtype('float16'): 'F16', np.dtype('int64'): 'I64'}


def save(path, tensors, metadata=None):
    """tensors: {name: ndarray (float32/float16/int64) or ('BF16', uint16 ndarray)}. Written atomically."""
    header, blobs, offset = {}, [], 0
    if metadata:
        header['__metadata__'] = {str(k): str(v) for k, v in metadata.items()}
    for name in sorted(tensors):
        value = tensors[name]
        if isinstance(value, tuple):
            tag, arr = value
            if tag != 'BF16' or arr.dtype != np.uint16:
                raise ValueError(f'{name}: only (BF16, uint16 array) tuples are supported')
        else:
            arr = value
            if arr.dtype not in _DTYPES:
                raise ValueError(f'{name}: unsupported dtype {arr.dtype}')
            tag = _DTYPES[arr.dtype]
        blob = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder('<'), copy=False).tobytes()
        header[name] = {'dtype': tag, 'shape': list(arr.shape), 'data_offsets': [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(',', ':')).encode('utf-8')
    text += b' ' * ((8 - len(text) % 8) % 8)
    tmp = f'{path}.tmp{os.getpid()}'
    with open(tmp, 'wb') as f:
        f.write(struct.pack('<Q', len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)
    os.replace(tmp, path)


def load(path):
    """Minimal reader (F32/F16/I64/BF16->float32) for scripts; trusts its input (our own files only)."""
    with open(path, 'rb') as f:
        raw = f.read()
    (n,) = struct.unpack('<Q', raw[:8])
    header = json.loads(raw[8:8 + n])
    base, out = 8 + n, {}
    for name, e in header.items():
        if name == '__metadata__':
            continue
        b, t = e['data_offsets']
        buf = raw[base + b:base + t]
        if e['dtype'] == 'BF16':
            arr = (np.frombuffer(buf, '<u2').astype(np.uint32) << 16).view(np.float32)
        else:
            arr = np.frombuffer(buf, {'F32': '<f4', 'F16': '<f2', 'I64': '<i8'}[e['dtype']])
        out[name] = arr.reshape(e['shape'])
    return out


def _cross_check_file(path):
    rng = np.random.default_rng(20261124)
    # F16 values: random normals, subnormals, the extremes, -0 and inf; numpy widens them to FP32 exactly.
    f16 = np.concatenate([rng.standard_normal(40).astype(np.float16),
                          np.array([0.0, -0.0, 65504.0, -65504.0, 2.0 ** -24, 6.0e-5, np.inf, -np.inf], np.float16)])
    f16 = f16.reshape(6, 8)
    # BF16: the top 16 bits of random FP32 patterns; bf16_as_f32 holds the same bits with a zero low half.
    b16 = (rng.standard_normal(12).astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
    b16 = np.concatenate([b16, np.array([0x0000, 0x8000, 0x7f7f, 0x0001], np.uint16)]).reshape(4, 4)
    b16_f32 = (b16.astype(np.uint32) << 16).view(np.float32)
    i64 = ((np.arange(6, dtype=np.int64) - 3) * 10 ** 12).reshape(2, 3)
    save(path, {'f16': f16, 'f16_as_f32': f16.astype(np.float32), 'bf16': ('BF16', b16), 'bf16_as_f32': b16_f32,
                'i64': i64}, metadata={'writer': 'numpy'})


if __name__ == '__main__':
    if len(sys.argv) != 2:
        sys.exit(f'usage: {sys.argv[0]} OUT.safetensors')
    _cross_check_file(sys.argv[1])
