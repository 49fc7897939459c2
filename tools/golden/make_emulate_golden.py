#!/usr/bin/python3
"""Golden data for the emulate execution mode (models/emulate_backend.hpp) from FPQVAR's own PyTorch code.

Run with Debian's /usr/bin/python3 (python3-torch 1.13, CPU):
    /usr/bin/python3 tools/golden/make_emulate_golden.py --fpqvar-git /work/.mirror/PKU-SEC-Lab+FPQVAR/repo \
        --out tests/fixtures/emulate

What it runs. Their files are taken out of the FPQVAR git directory with `git show <commit>:<path>` into a temporary
directory and imported unchanged: models_fp_quant_transform_rotate/*.py (quant_utils.py's quantizers and
QuantizedLinear / QuantizedLinear_fc2.from_float, basic_var.py's KV-cache quantizer) and rotate_utils/*.py
(block_random_hadamard_matrix, rotate_fc1). Only modules absent here are stood in for:
  - quant_cuda: their CUDA extension (quant/quant_kernel.cu), ported to torch CPU operations statement by statement:
    float32 distances fabsf(x - g_i) scanned over the grid in its order with `if (d <= best)` from best = 102400.0,
    result 0.0 when no grid value qualifies (NaN or |x| beyond the grid by more than 102400);
  - torch.clamp on float16 (torch 1.13 has no CPU kernel for it): clamped in float32 and narrowed back, the same
    bits since clamping rounds nothing;
  - huggingface_hub (one mixin class), dist, utils, transformers, quant_utils (top-level), tqdm: imported by their
    files but not used on the paths run here.
The inputs are seeded numpy draws with the cases the emulate mode must get right placed by hand: exact ties (values
on the midpoints between grid values times a power-of-two scale), quotients one FP16/FP32 ulp either side of a
midpoint under a non-power-of-two scale, zeros and -0, all-zero groups, a group whose FP16 scale underflows to 0,
outlier channels, negative and positive DFQ inputs (GELU-shaped), FP6 inputs.

Output (tests/fixtures/emulate/):
  emulate_golden.safetensors, tensors (F16 where their tensor is float16, else F32; bit patterns are what is compared):
    q.<case>.in / q.<case>.out   a quantizer's input and output, as their function returns it
    step.*                      one mat_qkv/fc1 layer step of AdaLNSelfAttn.forward and QuantizedLinear: h, s,
                                xs = h * s, x1 = xs @ R (torch FP32 matmul, R = the float32 GHT matrix, not stored),
                                w (FP32 weight), w_t = (w / s) rotated by rotate_fc1 (float64 product), w_q (FP16
                                weight after from_float and .half()),
                                x1_q (their act_quant of x1), b16 (bias after .half()), y (F.linear in FP32 of x1_q,
                                w_q and b16 widened: the kFp32 GEMM)
    w6.*                        the W6A6 weight path: w (FP32), w_q (FP16) from from_float(per_channel, fp6_e2m3)
    kv.*                        basic_var.SelfAttention's cache update over three scales with quant_KV (kv_bit 6):
                                kv.k<si> / kv.v<si> the new K (float32) / V (float16) of scale si, kv.cache_k<si> /
                                kv.cache_v<si> the cache after scale si (their cat of the re-quantized history and k)
    grid.<name>                 their grids (fp4_e2m1_grid, ...)
  Metadata: the FPQVAR commit, the command, and per quantizer case its function (JSON in "cases").
  README.md / fixture.json: commit, command, sha256 of the safetensors file.
Deterministic: same bytes on re-runs.
"""
import argparse
import hashlib
import importlib
import json
import os
import subprocess
import sys
import tempfile
import types

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_np  # noqa: E402

FPQVAR_FILES = [
    "models_fp_quant_transform_rotate/__init__.py", "models_fp_quant_transform_rotate/basic_vae.py",
    "models_fp_quant_transform_rotate/basic_var.py", "models_fp_quant_transform_rotate/helpers.py",
    "models_fp_quant_transform_rotate/quant.py", "models_fp_quant_transform_rotate/quant_utils.py",
    "models_fp_quant_transform_rotate/var.py", "models_fp_quant_transform_rotate/vqvae.py",
    "rotate_utils/__init__.py", "rotate_utils/hadamard_utils.py", "rotate_utils/rotation_utils.py",
]


# ---- stand-in for their CUDA extension quant_cuda (quant/quant_kernel.cu, quant/quant.cpp) ----
def quant_cuda_quant(x, y):
    """quant_forward_cuda(x, y) -> (z, idx): per element of x, the last grid value y[i] (scanning i upward) whose float
    distance fabsf(x - y[i]) is <= the smallest so far, starting from 102400.0 with z = 0.0; idx stays zeros."""
    x32 = x.to(torch.float32)
    grid = y.to(torch.float32)  # y_shared is float
    best = torch.full_like(x32, 102400.0)
    z = torch.zeros_like(x32)
    for i in range(grid.numel()):
        d = (x32 - grid[i]).abs()
        take = d <= best  # NaN compares false: a NaN element keeps z = 0.0
        best = torch.where(take, d, best)
        z = torch.where(take, grid[i].expand_as(z), z)
    return z.to(x.dtype), torch.zeros_like(x)


def install_stubs():
    qc = types.ModuleType("quant_cuda")
    qc.quant = quant_cuda_quant
    hub = types.ModuleType("huggingface_hub")

    class PyTorchModelHubMixin:  # noqa: D401 - only inherited from
        pass

    hub.PyTorchModelHubMixin = PyTorchModelHubMixin
    tq = types.ModuleType("tqdm")
    tq.tqdm = lambda it, **kw: it
    for name, mod in (("quant_cuda", qc), ("huggingface_hub", hub), ("tqdm", tq)):
        sys.modules[name] = mod
    for name in ("dist", "utils", "transformers", "quant_utils"):
        sys.modules.setdefault(name, types.ModuleType(name))
    # torch 1.13 has no CPU clamp kernel for float16 (their DFQ quantizer clamps to +-absmax). Clamping is exact (the
    # result is one of its inputs), so clamping the float32 widening and narrowing back gives the same bits.
    clamp = torch.clamp

    def clamp_half_ok(x, *a, **kw):
        if x.dtype == torch.float16:
            a = [v.float() if torch.is_tensor(v) else v for v in a]
            kw = {k: v.float() if torch.is_tensor(v) else v for k, v in kw.items()}
            return clamp(x.float(), *a, **kw).to(torch.float16)
        return clamp(x, *a, **kw)
    torch.clamp = clamp_half_ok


def extract_fpqvar(git_dir, commit, dest):
    def git(*a):
        return subprocess.run(["git", "-C", git_dir, *a], check=True, capture_output=True).stdout
    rev = git("rev-parse", commit).decode().strip()
    for path in FPQVAR_FILES:
        out = os.path.join(dest, path)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with open(out, "wb") as f:
            f.write(git("show", f"{rev}:{path}"))
    return rev


# ---- inputs ----
def f16(a):
    return torch.from_numpy(np.asarray(a, dtype=np.float16))


def f32(a):
    return torch.from_numpy(np.asarray(a, dtype=np.float32))


def midpoints(grid):
    g = sorted(set(float(v) for v in grid))
    return [(a + b) / 2 for a, b in zip(g, g[1:])]


def near_ulps(values, dtype, k):
    """values moved by k ulps of `dtype` (k may be negative), via nextafter."""
    v = np.asarray(values, dtype=dtype)
    step = np.inf if k > 0 else -np.inf
    for _ in range(abs(k)):
        v = np.nextafter(v, np.asarray(step, dtype=dtype))
    return v


def symmetric_case(rng, rows, cols, group, grid, dtype, outlier_col=5):
    """rows x cols values of `dtype`, group = the quantizer's block (cols for per-token): normal draws, an outlier
    column, then hand-placed groups (each a whole block along the row):
      row 0 block 0: exact ties: qmax * 2^-1 present (scale exactly 2^-1), every midpoint * 2^-1 with both signs;
      row 0 block 1 (when present): near ties under a non-power-of-two scale: absmax = qmax * s0 with s0 = 1.3 (in
                 dtype), values = nearest(dtype)(m * s0) moved by -2 .. +2 ulps for each midpoint m;
      row 1 block 0: all zeros, with a -0;  row 1 block 1 (when present): all -0;
      row 2 block 0: tiny values (FP16 subnormal range), absmax 2^-24 in one block (its FP16 scale underflows);
      row 3: negative absmax (the largest magnitude is negative)."""
    x = rng.standard_normal((rows, cols)).astype(np.float64)
    x[:, outlier_col] *= 40.0
    qmax = max(abs(float(v)) for v in grid)
    mids = midpoints(grid)
    blocks = cols // group

    def put(r, b, vals):
        vals = np.asarray(vals, dtype=np.float64)[:group]
        x[r, b * group:b * group + len(vals)] = vals
        x[r, b * group + len(vals):(b + 1) * group] = 0.0 if len(vals) < group else x[r, (b + 1) * group - 1]

    ties = [qmax * 0.5] + [m * 0.5 for m in mids] + [-m * 0.5 for m in mids]
    put(0, 0, ties)
    if blocks > 1:
        s0 = float(np.asarray(1.3, dtype=dtype))
        near = [float(np.asarray(qmax * s0, dtype=dtype))]
        for m in [m for m in mids if m > 0]:
            base = np.asarray(m * s0, dtype=dtype)
            for k in (-2, -1, 0, 1, 2):
                v = float(near_ulps(base, dtype, k)) if k else float(base)
                near += [v, -v]
        put(0, 1, near[:group])
    x[1, 0:group] = 0.0
    x[1, 3] = -0.0
    if blocks > 1:
        x[1, group:2 * group] = -0.0
    if rows > 2:
        x[2, 0:group] = rng.standard_normal(group) * 2.0 ** -20
        if blocks > 1:
            x[2, group:2 * group] = 0.0
            x[2, group + 7] = 2.0 ** -24
            x[2, group + 9] = -(2.0 ** -25)
    if rows > 3:
        x[3, 11] = -abs(x[3]).max() * 1.5
    return x.astype(dtype)


def gelu_case(rng, rows, cols, group, dtype):
    """GELU-shaped inputs for DFQ: gelu_tanh(normal * 2), plus: row 0 block 0 all positive, row 0 block 1 all <= 0
    (with -0 and +0), row 1 block 0 all zeros, exact ties on both sides (row 2), an outlier column."""
    z = rng.standard_normal((rows, cols)) * 2.0
    x = 0.5 * z * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (z + 0.044715 * z ** 3)))
    x[:, 3] *= 30.0
    x[0, 0:group] = np.abs(x[0, 0:group]) + 0.01
    if cols // group > 1:
        x[0, group:2 * group] = -np.abs(x[0, group:2 * group]) * 0.1
        x[0, group + 1] = -0.0
        x[0, group + 2] = 0.0
    x[1, 0:group] = 0.0
    x[1, 5] = -0.0
    return x.astype(dtype)


def dfq_ties(x, row, neg_grid, pos_grid, group):
    """Row `row` block 0: negative side scale 2^-3 exactly (absmax = qmax_neg / 8) and its midpoints; positive side
    scale 2^-2 (absmax = qmax_pos / 4) and its midpoints."""
    qn = max(abs(float(v)) for v in neg_grid)
    qp = max(abs(float(v)) for v in pos_grid)
    vals = [-qn / 8, qp / 4] + [-m / 8 for m in midpoints([abs(float(v)) for v in neg_grid])] + \
        [m / 4 for m in midpoints([float(v) for v in pos_grid])]
    vals = vals[:group]
    x[row, :len(vals)] = np.asarray(vals, dtype=x.dtype)
    x[row, len(vals):group] = 0.0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fpqvar-git", required=True, help="FPQVAR git directory (bare or a checkout)")
    ap.add_argument("--commit", default="HEAD")
    ap.add_argument("--out", required=True, help="output directory (tests/fixtures/emulate)")
    args = ap.parse_args()

    torch.set_num_threads(1)
    torch.manual_seed(0)  # nn.Linear initialisation (every stored weight is overwritten; this keeps reruns identical)
    install_stubs()
    tmp = tempfile.TemporaryDirectory()
    rev = extract_fpqvar(args.fpqvar_git, args.commit, tmp.name)
    sys.path.insert(0, tmp.name)
    qu = importlib.import_module("models_fp_quant_transform_rotate.quant_utils")
    bv = importlib.import_module("models_fp_quant_transform_rotate.basic_var")
    ru = importlib.import_module("rotate_utils.rotation_utils")

    rng = np.random.default_rng(20261206)
    tensors, cases = {}, {}

    def record(name, fn_name, fn, x, spec):
        out = fn(x.clone())
        tensors[f"q.{name}.in"] = x.numpy()
        tensors[f"q.{name}.out"] = out.numpy()
        cases[name] = dict(function=fn_name, in_dtype=str(x.dtype).replace("torch.", ""),
                           out_dtype=str(out.dtype).replace("torch.", ""), shape=list(x.shape), **spec)

    e2m1 = [float(v) for v in qu.fp4_e2m1_grid]
    e1m2 = [float(v) for v in qu.fp4_e1m2_grid]
    e3m0 = [float(v) for v in qu.fp4_e3m0_grid]
    e2m3 = [float(v) for v in qu.fp6_e2m3_grid]
    e3m2 = [float(v) for v in qu.fp6_e3m2_grid]
    for gname in ("fp4_e2m1_grid", "fp4_e1m2_grid", "fp4_e3m0_grid", "fp6_e2m3_grid", "fp6_e3m2_grid",
                  "int_neg_grid", "e2m3_pos_grid"):
        tensors[f"grid.{gname}"] = getattr(qu, gname).to(torch.float32).numpy()

    g128 = dict(granularity="group", group=128)
    tok = dict(granularity="token")
    # FP4 per 128-group (their *_per_group_cuda): FP16 inputs (activations under autocast) and FP32 (weights, kFp32).
    for dt, np_dt in (("f16", np.float16), ("f32", np.float32)):
        conv = f16 if dt == "f16" else f32
        record(f"e2m1_group_{dt}", "fp_quant_e2_per_group_cuda",
               lambda t: qu.fp_quant_e2_per_group_cuda(t, 4, 128),
               conv(symmetric_case(rng, 4, 256, 128, e2m1, np_dt)), dict(format="e2m1", **g128))
    record("e1m2_group_f16", "fp_quant_e1_per_group_cuda", lambda t: qu.fp_quant_e1_per_group_cuda(t, 4, 128),
           f16(symmetric_case(rng, 4, 256, 128, e1m2, np.float16)), dict(format="e1m2", **g128))
    record("e3m0_group_f16", "fp_quant_e3_per_group_cuda", lambda t: qu.fp_quant_e3_per_group_cuda(t, 4, 128),
           f16(symmetric_case(rng, 4, 256, 128, e3m0, np.float16)), dict(format="e3m0", **g128))
    # FP6 (their fp6_*_cuda: FP16 output whatever the input).
    for dt, np_dt in (("f16", np.float16), ("f32", np.float32)):
        conv = f16 if dt == "f16" else f32
        record(f"e2m3_token_{dt}", "fp6_quant_e2m3_per_token_cuda",
               lambda t: qu.fp6_quant_e2m3_per_token_cuda(t, 6),
               conv(symmetric_case(rng, 4, 128, 128, e2m3, np_dt)), dict(format="e2m3", **tok))
    record("e2m3_group_f16", "fp6_quant_e2m3_per_group_cuda", lambda t: qu.fp6_quant_e2m3_per_group_cuda(t, 6, 128),
           f16(symmetric_case(rng, 4, 256, 128, e2m3, np.float16)), dict(format="e2m3", **g128))
    record("e3m2_token_f16", "fp6_quant_e3m2_per_token_cuda", lambda t: qu.fp6_quant_e3m2_per_token_cuda(t, 6),
           f16(symmetric_case(rng, 4, 128, 128, e3m2, np.float16)), dict(format="e3m2", **tok))
    # DFQ on the fc2 input, through QuantizedLinear_fc2.from_float's act_quant (their module).
    lin = torch.nn.Linear(256, 8)
    fc2_4 = qu.QuantizedLinear_fc2.from_float(lin, weight_quant="per_group", act_quant="per_group", w_bit=4, a_bit=4,
                                              activation_fp_quant=True, weight_fp_quant=True,
                                              act_fp_type="fp_e1m2_neg_e2m1_pos", weight_fp_type="fp_e2")
    lin6 = torch.nn.Linear(128, 8)
    fc2_6 = qu.QuantizedLinear_fc2.from_float(lin6, weight_quant="per_channel", act_quant="per_token", w_bit=6,
                                              a_bit=6, activation_fp_quant=True, weight_fp_quant=True,
                                              act_fp_type="fp6_int_neg_e2m3_pos", weight_fp_type="fp6_e2m3")
    int_neg = [float(v) for v in qu.int_neg_grid]
    e2m3_pos = [float(v) for v in qu.e2m3_pos_grid]
    for dt, np_dt in (("f16", np.float16), ("f32", np.float32)):
        conv = f16 if dt == "f16" else f32
        x = gelu_case(rng, 4, 256, 128, np_dt)
        dfq_ties(x, 2, [-1.75, -1.5, -1.25, -1.0, -0.75, -0.5, -0.25, 0.0], [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0],
                 128)
        record(f"dfq4_group_{dt}", "fp_quant_e1m2_neg_e2m1_pos_per_group_cuda (QuantizedLinear_fc2.act_quant)",
               fc2_4.act_quant, conv(x), dict(format="dfq-e1m2-e2m1", **g128))
        x = gelu_case(rng, 4, 128, 128, np_dt)
        dfq_ties(x, 2, int_neg, e2m3_pos, 128)
        record(f"dfq6_token_{dt}", "fp6_quant_int_neg_e2m3_pos_per_token_cuda (QuantizedLinear_fc2.act_quant)",
               fc2_6.act_quant, conv(x), dict(format="dfq-int6-e2m3", **tok))

    # ---- one mat_qkv/fc1 layer step: x * s, @ R (AdaLNSelfAttn.forward), act_quant, F.linear ----
    cin, cout = 256, 64
    h = rng.standard_normal((6, cin)).astype(np.float32)
    h[:, [7, 130]] *= 25.0  # outlier channels
    s = np.exp(rng.uniform(-0.7, 0.7, cin)).astype(np.float32)
    w = (rng.standard_normal((cout, cin)) * 0.05).astype(np.float32)
    w[:, 40] *= 8.0
    b = (rng.standard_normal(cout) * 0.1).astype(np.float32)
    q_block = ru.block_random_hadamard_matrix(total_size=cin, block_size=128, device="cpu", seed=42)  # float64
    layer = types.SimpleNamespace(ffn=types.SimpleNamespace(fc1=torch.nn.Linear(cin, cout)))
    with torch.no_grad():
        layer.ffn.fc1.weight.copy_(f32(w))
        layer.ffn.fc1.bias.copy_(f32(b))
        # transform_model_utils.transform_fc1: W / s in the weight's dtype (FP32), then rotate_fc1 (FP64 product).
        layer.ffn.fc1.weight.data = (layer.ffn.fc1.weight.data / f32(s)).to(torch.float32)
        ru.rotate_fc1(layer, q_block)
    w_t = layer.ffn.fc1.weight.data.clone()
    ql = qu.QuantizedLinear.from_float(layer.ffn.fc1, weight_quant="per_group", act_quant="per_group", w_bit=4,
                                       a_bit=4, act_quant_sym=True, activation_fp_quant=True, weight_fp_quant=True,
                                       act_fp_type="fp_e2", weight_fp_type="fp_e2")
    ql = ql.half()  # evaluate_fp_quant_transform_rotate.py: var = var.half() after quantize_VAR
    r32 = q_block.to(torch.float32)  # the rotation_matrix of the sampling loop
    xs = f32(h).mul(f32(s))
    x1 = torch.matmul(xs, r32)
    x1_q = ql.act_quant(x1.clone())
    y = torch.nn.functional.linear(x1_q.float(), ql.weight.float(), ql.bias.float())
    for name, t in (("h", f32(h)), ("s", f32(s)), ("xs", xs), ("w", f32(w)), ("w_t", w_t),
                    ("w_q", ql.weight), ("b16", ql.bias.reshape(-1)), ("x1", x1), ("x1_q", x1_q), ("y", y)):
        tensors[f"step.{name}"] = t.detach().numpy()

    # ---- W6A6 weight path: per output channel E2M3 on the FP32 weight (returns FP16) ----
    w6 = (rng.standard_normal((32, 128)) * 0.05).astype(np.float32)
    w6[:, 9] *= 10.0
    l6 = torch.nn.Linear(128, 32)
    with torch.no_grad():
        l6.weight.copy_(f32(w6))
    q6 = qu.QuantizedLinear.from_float(l6, weight_quant="per_channel", act_quant="per_token", w_bit=6, a_bit=6,
                                       act_quant_sym=True, activation_fp_quant=True, weight_fp_quant=True,
                                       act_fp_type="fp6_e2m3", weight_fp_type="fp6_e2m3").half()
    tensors["w6.w"] = w6
    tensors["w6.w_q"] = q6.weight.detach().numpy()

    # ---- KV cache: SelfAttention.forward's caching branch with quant_KV, kv_bit 6, three scales ----
    # K comes out of F.normalize (float32 under autocast: linalg_vector_norm autocasts to FP32), V out of the FP16
    # qkv; layout BHLc with c = head_dim = 64.
    heads, hd, lens = 2, 64, (1, 4, 9)
    cached_k = cached_v = None
    for si, ln in enumerate(lens):
        k = rng.standard_normal((1, heads, ln, hd))
        k = (k / np.linalg.norm(k, axis=-1, keepdims=True)).astype(np.float32)
        k[0, 0, 0, 3] = 0.0
        v = (rng.standard_normal((1, heads, ln, hd)) * 0.7).astype(np.float16)
        if si == 1:
            v[0, 1, 0, :] = 0.0  # an all-zero token
        kt, vt = f32(k), f16(v)
        tensors[f"kv.k{si}"], tensors[f"kv.v{si}"] = k, v
        if cached_k is None:
            cached_k, cached_v = kt, vt
        else:
            cached_k = bv.fp6_quant_e2m3_per_token_cuda(cached_k, 6)
            cached_v = bv.fp6_quant_e2m3_per_token_cuda(cached_v, 6)
            cached_k = torch.cat((cached_k, kt), dim=2)
            cached_v = torch.cat((cached_v, vt), dim=2)
        tensors[f"kv.cache_k{si}"] = cached_k.numpy()
        tensors[f"kv.cache_v{si}"] = cached_v.numpy()

    os.makedirs(args.out, exist_ok=True)
    command = ("/usr/bin/python3 tools/golden/make_emulate_golden.py --fpqvar-git <FPQVAR git dir> "
               f"--commit {rev} --out tests/fixtures/emulate")
    meta = {"fpqvar_commit": rev, "command": command, "torch": torch.__version__,
            "cases": json.dumps(cases, sort_keys=True)}
    path = os.path.join(args.out, "emulate_golden.safetensors")
    safetensors_np.save(path, {k: np.ascontiguousarray(v) for k, v in tensors.items()}, metadata=meta)
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    fixture = {"fpqvar_commit": rev, "command": command, "torch": torch.__version__,
               "emulate_golden.safetensors": {"sha256": digest}, "cases": cases}
    with open(os.path.join(args.out, "fixture.json"), "w") as f:
        json.dump(fixture, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"wrote {path} ({len(tensors)} tensors, sha256 {digest})")


if __name__ == "__main__":
    main()
