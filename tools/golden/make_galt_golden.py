#!/usr/bin/python3
"""Golden data for quant/galt.hpp and quant/calibration.hpp: FPQVAR's GALT loss, its straight-through gradient and
torch.optim.AdamW, computed with torch autograd on small seeded problems.

Run with Debian's /usr/bin/python3 (python3-torch 1.13, CPU):
    /usr/bin/python3 tools/golden/make_galt_golden.py --out tests/fixtures/galt/galt_golden.txt

What it implements, independently of the C++ code:
  - the loss of PKU-SEC-Lab/FPQVAR learnable_transformation_{mat_qkv,fc1}_fp4.py compute_quant_error_v1:
        mean((x W^T - Q(((x * s) R)) Q(((W / s) R))^T)^2)
    with s a float32 torch Parameter, x * s in float32 as theirs; W / s in float64 and rounded to float32 once
    together with the rotation, the W' that the quantized model deploys (theirs divides in float32);
  - the rotation R = blockdiag(diag(D) H_n / float32(sqrt(n))) (D from torch.manual_seed(seed) + torch.randint(0, 2),
    H_n Sylvester), float64 as their random_hadamard_matrix: the weight product in float64 (their rotate_mat_qkv)
    and the activation product with R.to(float32) entries, evaluated in float64 and rounded once to float32 (the
    C++ emulate path; torch's own FP32 GEMM would add its summation error to every element);
  - the quantizers as autograd.Functions whose backward returns grad_output unchanged (their FPQuant/FP6Quant STE:
    nothing of the forward, not even the absmax scale, is differentiated). Their forward is replaced by the recipe's
    quantizer (absmax per block, scale rounded to FP32 or FP16, nearest grid value with the recipe's tie rule,
    saturation), written here with exact float64 comparisons against the midpoints times the scale;
  - from the quantized operands on, the product and the loss in float64 (a more exact oracle than FP32; the C++
    FP32 GEMMs are compared with a tolerance);
  - torch.optim.AdamW([s], lr, weight_decay) for a few epochs of one step per batch, as their loop.
Inputs are not stored: they are integers / 512 from SplitMix64 (exact in FP32), which the C++ test regenerates
(value(seed, i) below); outlier input channels are multiplied by a power of two.

Output: a text file, deterministic (same bytes on re-runs). Lines (hex: f32 = 8 digits of the bit pattern, f64 = 16):
  case NAME IN OUT TOKENS SEED_X SEED_W OUTLIER_FACTOR N_OUTLIERS j1 j2 ...
  recipe JSON                      the LayerRecipe (quant/recipe.hpp LAYER form, one line)
  batches N b0 e0 b1 e1 ...
  eval TAG BATCH                   followed by: s <IN f32>, loss <f64>, grad <IN f32>, gabs <IN f64>
                                   (gabs_j = sum_t |dL/d(x*s)_tj x_tj| + sum_o |dL/d(W/s)_oj W_oj| / s_j^2, the scale
                                   of the float sums behind grad_j, for the tolerance)
  mse_ones <f64>                   the loss over all tokens at s = ones
  adamw LR WD EPOCHS               followed by: epoch_loss <EPOCHS f64>, s_after <IN f32>, mse_after <f64>
  end
  adamw_unit LR WD N STEPS         torch.optim.AdamW alone: p0 <N f32>, then STEPS lines "step <grad N f32> <p N f32>"
                                   (the gradient given, the parameter after the step)
"""
import argparse
import json
import math

import numpy as np
import torch

MASK = (1 << 64) - 1


def splitmix64(x):
    """SplitMix64 of a uint64 numpy array (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def value(seed, n):
    """value(seed, i) for i in 0..n-1: ((SplitMix64(seed * 2^32 + i) >> 40) mod 2001 - 1000) / 512, exact in FP32."""
    i = np.arange(n, dtype=np.uint64) + np.uint64((seed << 32) & MASK)
    k = (splitmix64(i) >> np.uint64(40)) % np.uint64(2001)
    return (k.astype(np.float64) - 1000.0) / 512.0


def make_inputs(c):
    x = value(c["seed_x"], c["tokens"] * c["in"]).reshape(c["tokens"], c["in"])
    x[:, c["outliers"]] *= c["outlier_factor"]
    w = value(c["seed_w"], c["out"] * c["in"]).reshape(c["out"], c["in"]) / 8.0
    return torch.from_numpy(x.astype(np.float32)), torch.from_numpy(w.astype(np.float32))


# ---- formats: magnitude grids of the OCP MX / FPQVAR FP formats (no inf, no NaN) ----
def fp_magnitudes(e_bits, m_bits):
    bias = (1 << (e_bits - 1)) - 1
    mags = []
    for e in range(1 << e_bits):
        for m in range(1 << m_bits):
            if e == 0:
                mags.append(m / (1 << m_bits) * 2.0 ** (1 - bias))
            else:
                mags.append((1 + m / (1 << m_bits)) * 2.0 ** (e - bias))
    return mags


GRIDS = {"e2m1": fp_magnitudes(2, 1), "e2m3": fp_magnitudes(2, 3), "e3m2": fp_magnitudes(3, 2)}


def round_scale(q, scale_type):
    if scale_type == "fp32":
        return q.astype(np.float32).astype(np.float64)
    if scale_type == "fp16":
        h = q.astype(np.float16)  # numpy converts float64 -> float16 directly (one rounding, RNE)
        assert np.all(np.isfinite(h)) and np.all((h > 0) | (q == 0)), "scale out of FP16 range (not exercised)"
        return h.astype(np.float64)
    raise ValueError(scale_type)


def fake_quant_np(x, op):
    """x: float32 numpy (rows, cols). The recipe's quantizer: absmax per block, scale rounded once, nearest grid
    value (ties by op['rounding']), saturation at the grid's end, dequantized value rounded once to FP32."""
    rows, cols = x.shape
    mags = np.array(GRIDS[op["format"]])
    kmax = len(mags) - 1
    if op["granularity"] == "group":
        xb = x.reshape(rows, cols // op["group"], op["group"]).astype(np.float64)
    else:  # channel / token: one block per row
        xb = x.reshape(rows, 1, cols).astype(np.float64)
    absmax = np.abs(xb).max(axis=-1, keepdims=True)
    s = round_scale(absmax / mags[-1], op["scale"])
    a = np.abs(xb)
    idx = np.zeros(xb.shape, dtype=np.int64)
    for j in range(1, kmax + 1):
        t = (mags[j - 1] + mags[j]) / 2 * s  # exact: midpoint (few bits) times a 24-bit scale
        if op["rounding"] == "ties-up":  # ties toward +inf: up in magnitude for x > 0, down for x < 0
            up = (a > t) | ((a == t) & (xb > 0))
        elif op["rounding"] == "rne":  # ties to the even magnitude index (its code's last bit)
            up = (a > t) | ((a == t) & (j % 2 == 0))
        else:
            raise ValueError(op["rounding"])
        idx += up
    q = np.sign(xb) * mags[idx] * s
    q[np.broadcast_to(s == 0, q.shape)] = 0.0
    return q.astype(np.float32).reshape(rows, cols)


class STEQuant(torch.autograd.Function):
    """FPQVAR's quantizer Functions: forward quantizes (outside autograd), backward passes the gradient through."""

    @staticmethod
    def forward(ctx, x, op):
        return torch.from_numpy(fake_quant_np(x.detach().numpy(), op))

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output.clone(), None


# ---- rotation ----
def signs(n, seed):
    torch.manual_seed(seed)
    return (2 * torch.randint(0, 2, (n,)) - 1).to(torch.float64)


def sylvester(n):
    i = np.arange(n)
    pc = np.vectorize(lambda v: bin(v).count("1"))(i[:, None] & i[None, :])
    return torch.from_numpy(np.where(pc % 2 == 1, -1.0, 1.0))


def rotation(cols, rot):
    if rot["kind"] == "none":
        return None
    n = rot["block"] if rot["kind"] == "ght" else cols
    q = (torch.diag(signs(n, rot["seed"])) @ sylvester(n)) / torch.tensor(n).sqrt()  # float64 / float32 sqrt
    return torch.block_diag(*([q] * (cols // n)))


def forward(x, w, s, c, r64):
    """Returns (loss (float64 tensor), x*s (float32), W/s (float32)) and keeps the graph to s."""
    x1 = x * s
    w1 = w.double() / s.double()  # W / s in float64, rounded once with the rotation (the deployed W')
    if r64 is not None:
        x2 = (x1.double() @ r64.float().double()).float()
        w2 = (w1 @ r64).float()
    else:
        x2, w2 = x1, w1.float()
    xq = STEQuant.apply(x2, c["act"])
    wq = STEQuant.apply(w2, c["weight"])
    y = xq.double() @ wq.double().T
    ref = x.double() @ w.double().T
    return torch.mean((ref - y) ** 2), x1, w1


def evaluate(x, w, s0, c, r64, rows):
    s = torch.nn.Parameter(s0.clone())
    xb = x[rows[0]:rows[1]]
    loss, x1, w1 = forward(xb, w, s, c, r64)
    x1.retain_grad()
    w1.retain_grad()
    loss.backward()
    sd = s.detach().double()
    gabs = (x1.grad.double() * xb.double()).abs().sum(0) + (w1.grad * w.double()).abs().sum(0) / sd ** 2
    return loss.item(), s.grad.clone(), gabs


def hx32(t):
    return " ".join(f"{v:08x}" for v in np.asarray(t, dtype=np.float32).view(np.uint32))


def hx64(t):
    return " ".join(f"{v:016x}" for v in np.asarray(t, dtype=np.float64).view(np.uint64))


def operand_json(op):
    return {"format": op["format"], "granularity": op["granularity"], "group": op.get("group", 128),
            "scale": op["scale"], "rounding": op["rounding"]}


def run_case(c, out):
    torch.set_default_dtype(torch.float32)
    x, w = make_inputs(c)
    r64 = rotation(c["in"], c["rotation"])
    rot = c["rotation"]
    recipe = {"weight": operand_json(c["weight"]), "act": operand_json(c["act"]),
              "rotation": {"none": "none", "ght": "ght", "full": "full-hadamard"}[rot["kind"]],
              "rotation_block": rot.get("block", 128), "rotation_seed": rot.get("seed", 42)}
    out.append(f"case {c['name']} {c['in']} {c['out']} {c['tokens']} {c['seed_x']} {c['seed_w']} "
               f"{c['outlier_factor']:g} {len(c['outliers'])} " + " ".join(map(str, c["outliers"])))
    out.append("recipe " + json.dumps(recipe, sort_keys=True, separators=(",", ":")))
    out.append(f"batches {len(c['batches'])} " + " ".join(f"{b} {e}" for b, e in c["batches"]))
    ones = torch.ones(c["in"])
    pert = torch.from_numpy((1.0 + value(c["seed_x"] + 1000, c["in"]) / 8.0).astype(np.float32))
    for tag, s0, bi in (("ones", ones, 0), ("pert", pert, 1)):
        loss, grad, gabs = evaluate(x, w, s0, c, r64, c["batches"][bi])
        out.append(f"eval {tag} {bi}")
        out.append("s " + hx32(s0.numpy()))
        out.append("loss " + hx64([loss]))
        out.append("grad " + hx32(grad.numpy()))
        out.append("gabs " + hx64(gabs.numpy()))
    with torch.no_grad():
        out.append("mse_ones " + hx64([forward(x, w, ones, c, r64)[0].item()]))
    # AdamW, their loop: one step per batch, loss before the step, epoch loss = plain mean of the step losses.
    s = torch.nn.Parameter(ones.clone())
    opt = torch.optim.AdamW([s], lr=c["lr"], weight_decay=c["wd"])
    epoch_loss = []
    for _ in range(c["epochs"]):
        tot = 0.0
        for b, e in c["batches"]:
            loss = forward(x[b:e], w, s, c, r64)[0]
            loss.backward()
            opt.step()
            opt.zero_grad()
            tot += loss.item()
        epoch_loss.append(tot / len(c["batches"]))
    out.append(f"adamw {c['lr']!r} {c['wd']!r} {c['epochs']}")
    out.append("epoch_loss " + hx64(epoch_loss))
    out.append("s_after " + hx32(s.detach().numpy()))
    with torch.no_grad():
        out.append("mse_after " + hx64([forward(x, w, s.detach(), c, r64)[0].item()]))
    out.append("end")


def adamw_unit(out, n=8, steps=6, lr=0.01, wd=0.01):
    """torch.optim.AdamW on its own: gradients of mixed sign and magnitude (a zero, a sign flip), bit patterns out."""
    p = torch.nn.Parameter(torch.from_numpy((1.0 + value(77, n) / 4).astype(np.float32)))
    opt = torch.optim.AdamW([p], lr=lr, weight_decay=wd)
    out.append(f"adamw_unit {lr!r} {wd!r} {n} {steps}")
    out.append("p0 " + hx32(p.detach().numpy()))
    for k in range(steps):
        g = value(78 + k, n) * (10.0 ** (np.arange(n) % 5 - 3))
        g[0] = 0.0
        g[1] = (-1) ** k * 1e-3
        g = g.astype(np.float32)
        p.grad = torch.from_numpy(g.copy())
        opt.step()
        out.append("step " + hx32(g) + " " + hx32(p.detach().numpy()))


CASES = [
    # fpqvar-w4a4's qkv/fc1 layer in small: GHT block 128, E2M1 weights (FP32 scales) and activations (FP16
    # scales), groups of 128, ties-up; 3 batches (3 "scales") of 32 tokens; 4 outlier input channels x16.
    dict(name="ght_w4a4", **{"in": 256}, out=64, tokens=96, seed_x=11, seed_w=12, outlier_factor=16.0,
         outliers=[3, 77, 130, 200], batches=[(0, 32), (32, 64), (64, 96)],
         rotation=dict(kind="ght", block=128, seed=42),
         weight=dict(format="e2m1", granularity="group", group=128, scale="fp32", rounding="ties-up"),
         act=dict(format="e2m1", granularity="group", group=128, scale="fp16", rounding="ties-up"),
         lr=0.01, wd=0.01, epochs=3),
    # W6A6 style without rotation: E2M3 per output channel (FP32) and per token (FP16), RNE; uneven batches.
    dict(name="none_w6a6", **{"in": 128}, out=48, tokens=80, seed_x=21, seed_w=22, outlier_factor=32.0,
         outliers=[5, 64], batches=[(0, 16), (16, 56), (56, 80)],
         rotation=dict(kind="none"),
         weight=dict(format="e2m3", granularity="channel", scale="fp32", rounding="rne"),
         act=dict(format="e2m3", granularity="token", scale="fp16", rounding="rne"),
         lr=0.01, wd=0.01, epochs=2),
    # Full (Sylvester order 256) randomized Hadamard, W4A4 groups of 64.
    dict(name="full_w4a4", **{"in": 256}, out=32, tokens=64, seed_x=31, seed_w=32, outlier_factor=16.0,
         outliers=[0, 255], batches=[(0, 32), (32, 64)],
         rotation=dict(kind="full", seed=7),
         weight=dict(format="e2m1", granularity="group", group=64, scale="fp32", rounding="ties-up"),
         act=dict(format="e2m1", granularity="group", group=64, scale="fp16", rounding="ties-up"),
         lr=0.01, wd=0.01, epochs=2),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)
    lines = [
        "# GALT golden (quant/galt.hpp, quant/calibration.hpp): FPQVAR's compute_quant_error_v1 loss with torch",
        "# autograd, identity-backward quantizers (their STE) and torch.optim.AdamW; generated by",
        "# /usr/bin/python3 tools/golden/make_galt_golden.py --out tests/fixtures/galt/galt_golden.txt",
        f"# torch {torch.__version__}; format of the lines: see the script's docstring",
    ]
    for c in CASES:
        run_case(c, lines)
    adamw_unit(lines)
    with open(args.out + ".tmp", "w") as f:
        f.write("\n".join(lines) + "\n")
    import os
    os.replace(args.out + ".tmp", args.out)


if __name__ == "__main__":
    main()
