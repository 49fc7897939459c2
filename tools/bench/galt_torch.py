#!/usr/bin/python3
"""FPQVAR's GALT training loop in torch (CPU), timed: the twin of tools/bench/galt_bench.cpp (same shapes and data
model, values drawn by torch). The loss and quantizer are FPQVAR's as written in learnable_transformation/
learnable_transformation_mat_qkv_fp4.py (FPQuant: E2M1 grid, absmax / 6 per group of 128, nearest grid value by
argmin, identity backward; compute_quant_error_v1; torch.optim.AdamW(lr=0.01); one step per VAR scale), restated
here (their script loads files and has no function to import). The rotation is their GHT (block 128) as float32.
Prints one line per epoch, "seconds_per_epoch S" and "cpu_seconds_per_epoch C" (means over the epochs after the
first, or the first alone).
    /usr/bin/python3 tools/bench/galt_torch.py --images 6 --epochs 3 --threads 1
"""
import argparse
import time

import torch

PATCH_NUMS = (1, 2, 3, 4, 5, 6, 8, 10, 13, 16)
GRID = torch.tensor([-6.0, -4.0, -3.0, -2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0])


class FPQuant(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, group_size=128):
        shape = x.shape
        x = x.view(-1, group_size)
        scale = x.abs().max(dim=-1, keepdim=True)[0] / GRID.abs().max()
        x = x / scale
        q = GRID[torch.argmin(torch.abs(x.unsqueeze(-1) - GRID), dim=-1)]
        return (q * scale).view(shape)

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output.clone(), None


def loss_fn(x, w, s, q):
    fp = torch.matmul(x, w.T)
    xq = FPQuant.apply(torch.matmul(x * s, q))
    wq = FPQuant.apply(torch.matmul(w / s, q))
    return torch.mean((fp - torch.matmul(xq, wq.T)) ** 2)


def ght(n, block=128, seed=42):
    torch.manual_seed(seed)
    d = 2 * torch.randint(0, 2, (block,)) - 1
    i = torch.arange(block)
    h = torch.ones(block, block)
    for b in range(7):
        h *= torch.where(((i[:, None] & i[None, :]) >> b) & 1 == 1, -1.0, 1.0)
    qb = (torch.diag(d.double()) @ h.double()) / torch.tensor(block).sqrt()
    return torch.block_diag(*([qb] * (n // block))).float()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=6)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--outliers", type=int, default=8)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    g = torch.Generator().manual_seed(1)
    cols = torch.randint(0, 1024, (a.outliers,), generator=g)
    acts = []
    for k, pn in enumerate(PATCH_NUMS):
        x = torch.randn(pn * pn * a.images, 1024, generator=g)
        x[:, cols] *= 20.0 + 2.0 * k
        acts.append(x)
    w = 0.03 * torch.randn(3072, 1024, generator=g)
    q = ght(1024)
    s = torch.nn.Parameter(torch.ones(1024))
    opt = torch.optim.AdamW([s], lr=0.01)
    times, cpus = [], []
    for e in range(a.epochs):
        t0, c0 = time.perf_counter(), time.process_time()
        tot = 0.0
        for x in acts:
            loss = loss_fn(x, w, s, q)
            loss.backward()
            opt.step()
            opt.zero_grad()
            tot += loss.item()
        times.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        print(f"epoch {e + 1}: loss {tot / len(acts):.6e}  {times[-1]:.2f} s wall, {cpus[-1]:.2f} s CPU", flush=True)
    per = sum(times[1:]) / (len(times) - 1) if len(times) > 1 else times[0]
    per_cpu = sum(cpus[1:]) / (len(cpus) - 1) if len(cpus) > 1 else cpus[0]
    print(f"seconds_per_epoch {per:.4f}")
    print(f"cpu_seconds_per_epoch {per_cpu:.4f}")


if __name__ == "__main__":
    main()
