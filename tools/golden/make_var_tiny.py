#!/usr/bin/python3
"""Makes the golden fixture tests/fixtures/var_tiny by running the OFFICIAL FoundationVision/VAR code (FP32, CPU).

    /usr/bin/python3 tools/golden/make_var_tiny.py --var-repo /tmp/var_official --out tests/fixtures/var_tiny

With the real checkpoints it makes a local (uncommitted) golden of a full model, e.g. VAR-d16 sampling class 207:
    /usr/bin/python3 tools/golden/make_var_tiny.py --var-repo /tmp/var_official --out /tmp/golden_d16 \
        --depth 16 --patch-nums 1,2,3,4,5,6,8,10,13,16 --vae-ch 160 --batch 1 --labels 207 \
        --var-ckpt var_d16.pth --vae-ckpt vae_ch160v4096z32.pth --sample --threads 2

--var-repo is a checkout (or `git archive` extract) of https://github.com/FoundationVision/VAR; nothing of it is
copied into the output. Weights come from the seeded generator of synthetic_np.py (the twin of models/synthetic.cpp),
installed into the official modules by their state_dict names; the sampler is replaced by teacher forcing (fixed
token indices per scale), so the run is deterministic. See tools/golden/README.md and the fixture's README.md.
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
import types

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_np  # noqa: E402
import synthetic_np  # noqa: E402

_BASE = dict(depth=2, patch_nums=(1, 2, 3, 4), V=4096, Cvae=32, vae_ch=32, share_quant_resi=4, num_classes=1000,
             shared_aln=False, attn_l2_norm=True, batch=2, labels=(207, 980), cfg=1.5, token_seed=3)
# var_tiny: the main fixture. var_tiny_shared: the shared-AdaLN structure of the 512 d36-s model (one SiLU+Linear
# C->6C for all blocks plus a per-block ada_gss), kept small (depth 1, B = 1) to fit the size budget.
VARIANTS = {
    'var_tiny': _BASE,
    'var_tiny_shared': {**_BASE, 'depth': 1, 'shared_aln': True, 'batch': 1, 'labels': (207,)},
}


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


def loaded_blas():
    # The BLAS the run used (the golden bits depend on its kernels: another BLAS, or the same one on a CPU with other
    # vector units, sums in another order and moves results by ulps).
    with open('/proc/self/maps') as f:
        return sorted({line.split()[-1] for line in f if 'blas' in line.split()[-1]})


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--var-repo', required=True, help='path to a checkout of FoundationVision/VAR')
    ap.add_argument('--out', required=True, help='output folder (created)')
    ap.add_argument('--variant', choices=sorted(VARIANTS), default='var_tiny', help='which fixture (default var_tiny)')
    ap.add_argument('--seed', type=int, default=None, help='weight seed (default: the first seed >= 1 whose '
                    'scale_mul values hit the ln(100) clamp in some head and not in others)')
    ap.add_argument('--var-commit', default=None, help='commit hash of --var-repo when it is not a git checkout '
                    '(e.g. a `git archive` extract); recorded in fixture.json')
    ap.add_argument('--depth', type=int, help='override the variant: VAR depth (C = 64 depth, heads = depth)')
    ap.add_argument('--patch-nums', help='override: comma-separated patch_nums, e.g. 1,2,3,4,5,6,8,10,13,16')
    ap.add_argument('--vae-ch', type=int, help='override: VQ-VAE base channel count (160 for the official VQ-VAE)')
    ap.add_argument('--shared-aln', action='store_true', help='override: shared AdaLN (the 512 d36-s model)')
    ap.add_argument('--batch', type=int, help='override: images B (the CFG batch is 2B)')
    ap.add_argument('--labels', help='override: comma-separated class labels, one per image')
    ap.add_argument('--var-ckpt', help='official VAR weights (.pth or our .safetensors) instead of synthetic ones; '
                    'not copied to --out (fixture.json records its sha256)')
    ap.add_argument('--vae-ckpt', help='official VQ-VAE weights (.pth or .safetensors), likewise')
    ap.add_argument('--sample', action='store_true', help='let the official sampler draw the tokens (top-k 900, '
                    'top-p 0.96, --g-seed) and record them, instead of teacher forcing with seeded random tokens')
    ap.add_argument('--g-seed', type=int, default=0, help='seed of the official sampler (with --sample)')
    ap.add_argument('--threads', type=int, default=1, help='torch threads (the run is timed; fixture.json)')
    ap.add_argument('--no-guided', action='store_true', help='do not record guided_logits.K (the sampler input; '
                    'var_tiny_shared leaves them out to keep both fixtures under 8 MB)')
    args = ap.parse_args()
    repo = os.path.abspath(args.var_repo)
    for f in ('models/var.py', 'models/vqvae.py', 'models/quant.py', 'models/basic_var.py', 'dist.py'):
        if not os.path.isfile(os.path.join(repo, f)):
            sys.exit(f'error: {repo} does not look like a FoundationVision/VAR checkout (missing {f})')

    # The official code imports huggingface_hub only for a mixin class; a stand-in keeps it off the network.
    hub = types.ModuleType('huggingface_hub')
    hub.PyTorchModelHubMixin = type('PyTorchModelHubMixin', (), {})
    sys.modules.setdefault('huggingface_hub', hub)
    sys.path.insert(0, repo)
    import torch
    import models as var_models
    import models.var as var_module
    from models import build_vae_var

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)  # nothing random is used, but keep any stray draw deterministic
    cfg = dict(VARIANTS[args.variant])
    if args.depth is not None:
        cfg['depth'] = args.depth
    if args.patch_nums:
        cfg['patch_nums'] = tuple(int(x) for x in args.patch_nums.split(','))
    if args.vae_ch is not None:
        cfg['vae_ch'] = args.vae_ch
    if args.shared_aln:
        cfg['shared_aln'] = True
    if args.labels:
        cfg['labels'] = tuple(int(x) for x in args.labels.split(','))
        cfg['batch'] = len(cfg['labels'])
    if args.batch is not None:
        cfg['batch'] = args.batch
    if len(cfg['labels']) != cfg['batch']:
        sys.exit(f'error: {len(cfg["labels"])} labels for batch {cfg["batch"]} (pass --labels with one per image)')
    pn = cfg['patch_nums']
    vae, var = build_vae_var(device='cpu', patch_nums=pn, V=cfg['V'], Cvae=cfg['Cvae'], ch=cfg['vae_ch'],
                             share_quant_resi=cfg['share_quant_resi'], num_classes=cfg['num_classes'],
                             depth=cfg['depth'], shared_aln=cfg['shared_aln'], attn_l2_norm=cfg['attn_l2_norm'],
                             flash_if_available=False, fused_if_available=False)
    vae.eval()
    var.eval()

    # ---- weights: seeded, by state_dict name ----
    def scale_muls(seed):
        return [synthetic_np.values(seed, f'blocks.{j}.attn.scale_mul_1H11', (1, cfg['depth'], 1, 1)).ravel()
                for j in range(cfg['depth'])]
    seed = args.seed
    if seed is None:
        seed = 1
        while cfg['depth'] ** 2 >= 2:  # with a single head, any seed
            v = np.concatenate(scale_muls(seed))
            if (v > np.log(100)).any() and (v < np.log(100)).any():
                break
            seed += 1

    def load_ckpt(path):
        if not os.path.isfile(path):
            sys.exit(f'error: {path}: no such file')
        if path.endswith('.safetensors'):
            return {k: torch.from_numpy(np.array(v, dtype=np.float32) if v.dtype == np.float16 else np.array(v))
                    for k, v in safetensors_np.load(path).items()}
        try:
            return torch.load(path, map_location='cpu', weights_only=True)
        except Exception as e:
            sys.exit(f'error: {path}: cannot load as a weights-only torch checkpoint: {e}')

    def install(module, ckpt=None):
        if ckpt is not None:
            sd = load_ckpt(ckpt)
            if 'quantize.ema_vocab_hit_SV' in sd:  # its shape follows the training scale count; unused here
                sd['quantize.ema_vocab_hit_SV'] = module.state_dict()['quantize.ema_vocab_hit_SV']
            try:
                torch.nn.Module.load_state_dict(module, sd, strict=True)
            except RuntimeError as e:
                sys.exit(f'error: {ckpt} does not fit the configured model: {e}')
            return {k: v.detach().clone() for k, v in module.state_dict().items()}
        sd = module.state_dict()
        new = {}
        for name, t in sd.items():
            if synthetic_np.is_buffer(name):
                new[name] = t
            else:
                new[name] = torch.from_numpy(synthetic_np.values(seed, name, tuple(t.shape)))
        # nn.Module's own loader: VQVAE.load_state_dict passes `assign=`, which torch 1.13 lacks (it only swaps
        # an ema buffer of another size, which does not arise here).
        torch.nn.Module.load_state_dict(module, new, strict=True)
        return {k: v.detach().clone() for k, v in module.state_dict().items()}
    var_sd = install(var, args.var_ckpt)
    vae_sd = install(vae, args.vae_ckpt)

    # ---- teacher forcing: the sampler returns the fixed tokens of the current scale ----
    rng = np.random.default_rng(cfg['token_seed'])
    B = cfg['batch']
    tokens = [rng.integers(0, cfg['V'], size=(B, p * p), dtype=np.int64) for p in pn]
    step = {'si': 0}

    official_sampler = var_module.sample_with_top_k_top_p_

    def teacher(logits_BlV, rng=None, top_k=0, top_p=0.0, num_samples=1):
        si = step['si']
        assert tuple(logits_BlV.shape[:2]) == (B, pn[si] ** 2), logits_BlV.shape
        # The sampler's input: the CFG-guided logits (1 + t) logits[:B] - t logits[B:], t = cfg * si / (S - 1).
        if not args.no_guided:
            put(f'guided_logits.{si}', logits_BlV)
        step['si'] += 1
        if args.sample:  # the official draw, recorded (the argument is consumed in place: pass a copy)
            idx = official_sampler(logits_BlV.clone(), rng=rng, top_k=top_k, top_p=top_p, num_samples=num_samples)
            tokens[si] = idx[:, :, 0].numpy().astype(np.int64).copy()
            return idx
        return torch.from_numpy(tokens[si]).unsqueeze(-1)
    var_module.sample_with_top_k_top_p_ = teacher

    # ---- hooks ----
    rec = {}

    def put(name, t):
        assert name not in rec, name
        rec[name] = t.detach().float().clone().numpy()

    def block_hook(j):
        def hook(mod, inp, out):
            put(f'block_out.{step["si"]}.{j}', out)
        return hook
    for j, blk in enumerate(var.blocks):
        blk.register_forward_hook(block_hook(j))
    # blocks are called with keyword arguments, which torch 1.13's pre-hooks do not see: wrap forward instead.
    block0_forward = var.blocks[0].forward

    def block0_with_record(x, cond_BD, attn_bias):
        put(f'block_in.{step["si"]}', x)
        if step['si'] == 0 and cfg['shared_aln']:
            put('shared_ada_lin_out', cond_BD)  # (2B, 1, 6, C): SiLU + Linear of cond_BD, before each block's ada_gss
        return block0_forward(x=x, cond_BD=cond_BD, attn_bias=attn_bias)
    var.blocks[0].forward = block0_with_record
    var.class_emb.register_forward_hook(lambda mod, inp, out: put('cond_BD', out))
    var.head.register_forward_hook(lambda mod, inp, out: put(f'logits.{step["si"]}', out))
    # word_embed runs after scale si's tokens are consumed (step already advanced): its input is scale si's input.
    var.word_embed.register_forward_hook(lambda mod, inp, out: put(f'next_in.{step["si"]}', inp[0]))
    quant = vae.quantize
    orig_next = quant.get_next_autoregressive_input

    def next_input(si, SN, f_hat, h_BChw):
        put(f'code_embed.{si}', h_BChw)  # codebook lookup (B, Cvae, pn, pn), before upsampling
        f_hat, nxt = orig_next(si, SN, f_hat, h_BChw)
        put(f'fhat.{si}', f_hat)
        return f_hat, nxt
    quant.get_next_autoregressive_input = next_input

    t0 = time.perf_counter()
    with torch.no_grad():
        img = var.autoregressive_infer_cfg(B=B, label_B=torch.tensor(cfg['labels'], dtype=torch.long),
                                           g_seed=args.g_seed, cfg=cfg['cfg'], top_k=900, top_p=0.96,
                                           more_smooth=False)
    seconds = time.perf_counter() - t0
    assert step['si'] == len(pn)
    rec['image'] = img.float().numpy()
    rec['fhat'] = rec[f'fhat.{len(pn) - 1}']
    # the ticks table actually used: scale si -> index of the Phi conv
    phi_table = [int(np.argmin(np.abs(quant.quant_resi.ticks - si / (len(pn) - 1)))) for si in range(len(pn))]
    clamp_heads = [[bool(x > np.log(100)) for x in var_sd[f'blocks.{j}.attn.scale_mul_1H11'].numpy().ravel()]
                   for j in range(cfg['depth'])]

    os.makedirs(args.out, exist_ok=True)
    out_t = {k: v.astype(np.float32) for k, v in rec.items()}
    out_t['labels'] = np.array(cfg['labels'], dtype=np.int64)
    for si, t in enumerate(tokens):
        out_t[f'tokens.{si}'] = t
    safetensors_np.save(os.path.join(args.out, 'golden.safetensors'), out_t, metadata={'source': 'official VAR'})
    safetensors_np.save(os.path.join(args.out, 'tokens.safetensors'),
                        {f'tokens.{si}': t for si, t in enumerate(tokens)}, metadata={'labels': list(cfg['labels'])})

    synthetic = args.var_ckpt is None and args.vae_ckpt is None
    # VAR weights: every value is FP16-exact (synthetic_np contract), so F16 storage loses nothing; the
    # attention-mask buffer holds 0 and -inf (both exact in FP16); lvl_1L is int64.
    def to_np(t):
        a = t.numpy()
        return a if a.dtype == np.int64 else a.astype(np.float16)
    if synthetic:
        for k, v in var_sd.items():
            assert np.array_equal(to_np(v).astype(v.numpy().dtype), v.numpy()), k
        safetensors_np.save(os.path.join(args.out, f'var_d{cfg["depth"]}.safetensors'),
                            {k: to_np(v) for k, v in var_sd.items()}, metadata={'seed': seed})
    # The VQ-VAE weights (about 5.9 M values even at ch=32, 12 MB in F16) would not fit the size budget: the
    # manifest lists every state_dict entry with its shape and a checksum; models/synthetic.cpp regenerates them.
    manifest = []
    for k, v in (vae_sd.items() if args.vae_ckpt is None else []):
        a = v.numpy()
        manifest.append({'name': k, 'shape': list(a.shape), 'dtype': str(a.dtype), 'buffer': synthetic_np.is_buffer(k),
                         'sum': float(a.astype(np.float64).sum()),
                         'first': [float(x) for x in a.reshape(-1)[:4]]})

    commit = args.var_commit or subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=repo, capture_output=True,
                                               text=True).stdout.strip() or 'unknown (pass --var-commit)'
    meta = {
        'command': 'python3 ' + ' '.join([os.path.relpath(__file__, os.getcwd())] + sys.argv[1:]),
        'official_repo': 'https://github.com/FoundationVision/VAR', 'official_commit': commit,
        'torch_version': torch.__version__, 'numpy_version': np.__version__, 'python': sys.version.split()[0],
        'threads': torch.get_num_threads(), 'dtype': 'float32 (CPU)', 'blas_loaded': loaded_blas(),
        'cpu_flags_avx512f': 'avx512f' in open('/proc/cpuinfo').read(),
        'config': {**{k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()},
                   'embed_dim': var.C, 'num_heads': var.num_heads, 'mlp_ratio': 4.0, 'norm_eps': 1e-6,
                   'vae_ch_mult': [1, 1, 2, 2, 4], 'vae_num_res_blocks': 2, 'quant_resi': 0.5,
                   'image_size': int(img.shape[-1]), 'top_k': 900, 'top_p': 0.96, 'g_seed': 0,
                   'sampler': ('official sample_with_top_k_top_p_, g_seed %d, tokens recorded in tokens.K' % args.g_seed
                               if args.sample else 'replaced by teacher forcing (tokens.K)')},
        'official_seconds_with_hooks': round(seconds, 3),
        'checkpoints': {k: {'path': os.path.abspath(p), 'sha256': sha256_file(p)}
                        for k, p in (('var', args.var_ckpt), ('vae', args.vae_ckpt)) if p},
        'variant': args.variant, 'weight_seed': seed if synthetic else None, 'phi_table': phi_table, 'scale_mul_clamped[block][head]': clamp_heads,
        'cfg_t_per_scale': [cfg['cfg'] * si / (len(pn) - 1) for si in range(len(pn))],
        'vae_manifest': manifest,
        'files': {},
    }
    for f in sorted(os.listdir(args.out)):
        if f.endswith('.safetensors'):
            with open(os.path.join(args.out, f), 'rb') as fh:
                meta['files'][f] = {'bytes': os.path.getsize(os.path.join(args.out, f)),
                                    'sha256': hashlib.sha256(fh.read()).hexdigest()}
    with open(os.path.join(args.out, 'fixture.json'), 'w') as fh:
        json.dump(meta, fh, indent=1)
    print(json.dumps({k: meta[k] for k in ('weight_seed', 'phi_table', 'scale_mul_clamped[block][head]', 'files')}))


if __name__ == '__main__':
    main()
