#!/usr/bin/python3
"""Times the official FoundationVision/VAR code (FP32, CPU) on one image with CFG, random weights, for the
var_fp32 benchmark. Not a copy of their code: it imports it from a checkout given on the command line.

    /usr/bin/python3 tools/bench/var_fp32_torch.py --var-repo /tmp/var_official --depth 16 --threads 2

Prints one JSON line: {"transformer_s", "decoder_s", "total_s" (wall seconds), "cpu_s" (process CPU seconds, all
threads), "threads", "torch", "runs", "first_transformer_s", "transformer_runs_s"}. With --repeats R the image is
generated R times in the same process (same seed): the figures are the run with the least transformer time, and
first_transformer_s is the cold first run (so a caller can compare best with best and first with first).
transformer_s covers autoregressive_infer_cfg up to f_hat (transformer, sampling, VQ-VAE residual path);
decoder_s covers vae.fhat_to_img (post_quant_conv + decoder). huggingface_hub is imported by the official code only
for a mixin; when it is missing, a stand-in module with an empty PyTorchModelHubMixin is installed.
"""
import argparse
import json
import math
import sys
import time
import types


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--var-repo', required=True, help='checkout of FoundationVision/VAR')
    ap.add_argument('--depth', type=int, default=16)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--class-label', type=int, default=207)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--repeats', type=int, default=1, help='images generated in this process; the best is reported')
    args = ap.parse_args()

    try:
        import huggingface_hub  # noqa: F401
    except ImportError:
        stub = types.ModuleType('huggingface_hub')
        stub.PyTorchModelHubMixin = type('PyTorchModelHubMixin', (), {})
        sys.modules['huggingface_hub'] = stub
    sys.path.insert(0, args.var_repo)
    import torch
    torch.set_num_threads(args.threads)
    from models import build_vae_var

    torch.manual_seed(args.seed)
    shared = args.depth == 36
    pn = (1, 2, 3, 4, 6, 9, 13, 18, 24, 32) if shared else (1, 2, 3, 4, 5, 6, 8, 10, 13, 16)
    vae, var = build_vae_var(device='cpu', patch_nums=pn, depth=args.depth, shared_aln=shared,
                             flash_if_available=False, fused_if_available=False)
    with torch.no_grad():  # build_vae_var leaves the VQ-VAE uninitialised: give it finite random values
        for name, p in vae.named_parameters():
            if p.dim() > 1:
                p.normal_(0.0, 1.0 / math.sqrt(p[0].numel()))
            elif name.endswith('weight'):
                p.fill_(1.0)
            else:
                p.zero_()
    var.eval()
    vae.eval()

    timing = {}
    decode = vae.fhat_to_img

    def timed_decode(f_hat):
        timing['decoder_start'] = time.perf_counter()
        out = decode(f_hat)
        timing['decoder_end'] = time.perf_counter()
        return out
    vae.fhat_to_img = timed_decode

    runs = []
    for _ in range(max(args.repeats, 1)):
        start = time.perf_counter()
        cpu_start = time.process_time()
        with torch.inference_mode():
            img = var.autoregressive_infer_cfg(B=1, label_B=args.class_label, g_seed=args.seed, cfg=1.5, top_k=900,
                                               top_p=0.96)
        end = time.perf_counter()
        cpu_s = time.process_time() - cpu_start
        assert img.shape[0] == 1 and torch.isfinite(img).all()
        runs.append({'transformer_s': timing['decoder_start'] - start,
                     'decoder_s': timing['decoder_end'] - timing['decoder_start'],
                     'total_s': end - start, 'cpu_s': cpu_s})
    best = min(runs, key=lambda r: r['transformer_s'])
    print(json.dumps({**best, 'threads': args.threads, 'torch': torch.__version__, 'runs': len(runs),
                      'first_transformer_s': runs[0]['transformer_s'],
                      'transformer_runs_s': [r['transformer_s'] for r in runs]}), flush=True)


if __name__ == '__main__':
    main()
