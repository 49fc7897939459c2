"""Python twin of models/synthetic.cpp: seeded synthetic weights, defined so that both sides produce the same bits.

Contract (any change here must change models/synthetic.cpp and regenerate tests/fixtures/var_tiny):
  splitmix64(z): z += 0x9E3779B97F4A7C15; z = (z ^ z>>30) * 0xBF58476D1CE4E5B9; z = (z ^ z>>27) * 0x94D049BB133111EB;
                 return z ^ z>>31                                                     (all mod 2^64)
  fnv1a64(name): offset basis 0xcbf29ce484222325, prime 0x100000001b3, over the UTF-8 bytes of the state_dict name
  stream key  k = splitmix64(seed ^ fnv1a64(name));  element i (row-major): x_i = splitmix64(k + i)
  u_i = x_i >> (64 - bits)   (the top `bits` bits)
  value_i = offset + 2^amp_log2 * (2*u_i + 1 - 2^bits) / 2^bits      -- odd multiples of 2^-bits in (-1, 1), scaled
Every value is exactly representable in FP16 (at most 11 significant bits, smallest magnitude >= 2^-24), so the
FP32, FP16 and BF16-free paths agree and fixtures can store weights as F16 without rounding.
Rules by state_dict name and shape (rule()):
  *.scale_mul_1H11                     bits 4,  amp 2^0,  offset 4   (values in (3, 5): some heads hit the ln(100) clamp)
  1-D *norm*.weight (GroupNorm gamma)  bits 4,  amp 2^-2, offset 1
  other 1-D (biases, q_bias, v_bias)   bits 11, amp 2^-4, offset 0
  class_emb, lvl_embed, pos_start, pos_1LC, quantize.embedding   bits 11, amp 2^0, offset 0
  other weights (Linear, Conv; ndim>=2): fan_in = prod(shape[1:]); bits 11, amp 2^-floor(log2(fan_in)/2), offset 0
Buffers (lvl_1L, attn_bias_for_masking, zero_k_bias, ema_vocab_hit_SV) are not synthesised: they keep their
defined values.
"""
import numpy as np

M64 = (1 << 64) - 1
BUFFERS = ('lvl_1L', 'attn_bias_for_masking', 'zero_k_bias', 'ema_vocab_hit_SV')
EMBEDDINGS = ('class_emb.weight', 'lvl_embed.weight', 'pos_start', 'pos_1LC', 'quantize.embedding.weight')


def splitmix64_np(z):
    """z: uint64 ndarray (wrapping arithmetic)."""
    with np.errstate(over='ignore'):
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def splitmix64(z):
    z = (z + 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def fnv1a64(name):
    h = 0xcbf29ce484222325
    for byte in name.encode('utf-8'):
        h = ((h ^ byte) * 0x100000001b3) & M64
    return h


def is_buffer(name):
    return name.split('.')[-1] in BUFFERS


def rule(name, shape):
    """(bits, amp_log2, offset) for a parameter."""
    last = name.split('.')[-1]
    if last == 'scale_mul_1H11':
        return 4, 0, 4.0
    if any(name == e or name.endswith('.' + e) for e in EMBEDDINGS):
        return 11, 0, 0.0
    if len(shape) == 1:
        if last == 'weight' and 'norm' in name:
            return 4, -2, 1.0
        return 11, -4, 0.0
    fan_in = int(np.prod(shape[1:]))
    return 11, -((fan_in.bit_length() - 1) // 2), 0.0


def values(seed, name, shape):
    """float32 ndarray of the given shape."""
    bits, amp_log2, offset = rule(name, shape)
    n = int(np.prod(shape)) if len(shape) else 1
    k = splitmix64((seed ^ fnv1a64(name)) & M64)
    with np.errstate(over='ignore'):
        x = splitmix64_np(np.uint64(k) + np.arange(n, dtype=np.uint64))
    u = (x >> np.uint64(64 - bits)).astype(np.float64)
    v = offset + np.ldexp((2.0 * u + 1.0 - 2.0 ** bits) / 2.0 ** bits, amp_log2)
    out = v.astype(np.float32).reshape(shape)
    assert np.array_equal(out.astype(np.float16).astype(np.float32), out), f'{name}: not FP16-exact'
    return out
