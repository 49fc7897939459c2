#!/usr/bin/env python3
"""Plots of a sweep report (the JSON of `fpqvar sweep report --json`), written by `fpqvar sweep report --png-dir`.

  front.png    the points that ran (status ok) on each pair of the first three objectives, coloured by the first
               parameter; the Pareto front's points ringed in black
  effects.png  one panel per (objective, parameter): every ok point's value against the parameter's value (jittered),
               the median per value (bar) and the best per value (line) - what each parameter does on its own; a row
               for the recipes' quality (local SQNR) when it was computed and is not an objective
Each figure's footer names the command that made it (the report's "command") and, where quality is shown, the
`fpqvar eval` settings. PNGs are stored with a 256-colour palette (Pillow, matplotlib's own dependency) to keep them
small enough for a repository.

Usage: plot_sweep.py REPORT.json --out-dir DIR
"""
import argparse
import json
import math
import os
import random
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def value(point, metric):
    table = point["quality"] if metric.startswith("quality.") else point["metrics"]
    v = table.get(metric)
    if v is None:
        return None
    if isinstance(v, str):
        return math.inf if v == "inf" else (-math.inf if v == "-inf" else None)
    return float(v)


def label(v):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, list):
        return "/".join(f"{x:g}" if isinstance(x, float) else str(x) for x in v)
    return str(v)


def sort_key(v):
    if isinstance(v, (int, float)):
        return (0, float(v), "")
    if isinstance(v, list):
        return (1, sum(x for x in v if isinstance(x, (int, float))), label(v))
    return (2, 0.0, str(v))


def axis_name(obj):
    return f"{obj['metric']} ({obj['direction']})"


def quality_metric(report, names):
    """The recipes' quality metric to show beside the objectives, when computed and not an objective already."""
    return next((q for q in ("quality.local_sqnr_db", "quality.logits_sqnr_db")
                 if q in report.get("quality_metrics", []) and q not in names), None)


def footer(fig, report, with_quality):
    """Writes what made the figure at its bottom; returns the fraction of the height it takes."""
    lines = []
    if report.get("command"):
        lines.append(f"made by: {report['command']}" +
                     (f"  (fpqvar {report['fpqvar_version']})" if report.get("fpqvar_version") else ""))
    qs = report.get("quality_settings") or {}
    if with_quality and qs.get("command"):
        lines.append(f"quality, once per recipe: {qs['command']} (teacher-forced local SQNR on a synthetic model, "
                     f"uncalibrated: differences between recipes, not FIDs)")
    if not lines:
        return 0.0
    height = fig.get_figheight()
    fig.text(0.005, 0.005, "\n".join(lines), fontsize=7, ha="left", va="bottom", family="monospace", color="0.25")
    return min(0.2, (0.14 + 0.13 * len(lines)) / height)


def save_small(fig, out, dpi):
    """PNG with an adaptive 256-colour palette when Pillow is there (3-4x smaller for scatter plots)."""
    fig.savefig(out, dpi=dpi, format="png")
    try:
        from PIL import Image
    except ImportError:
        return
    with Image.open(out) as im:
        small = im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    small.save(out, format="PNG", optimize=True)


def maybe_log(ax, values, which):
    finite = [v for v in values if v is not None and math.isfinite(v) and v > 0]
    if finite and max(finite) / min(finite) > 100:
        (ax.set_xscale if which == "x" else ax.set_yscale)("log")


def plot_front(report, ok, out):
    objectives = report["objectives"][:3]
    pairs = [(0, 1), (0, 2), (1, 2)][: max(1, len(objectives) * (len(objectives) - 1) // 2)]
    # The recipes' quality against the first objective, when it was computed and is not an objective already.
    names = [o["metric"] for o in objectives]
    quality = quality_metric(report, names)
    if quality and len(objectives) >= 2:
        objectives = objectives + [{"metric": quality, "direction": "max"}]
        pairs = pairs + [(0, len(objectives) - 1)]
    params = report["parameters"]
    colour_by = params[0] if params else None
    groups = sorted({json.dumps(p["params"].get(colour_by)) for p in ok}, key=lambda s: sort_key(json.loads(s)))
    cmap = plt.get_cmap("tab10" if len(groups) <= 10 else "tab20")
    colour = {g: cmap(i % cmap.N) for i, g in enumerate(groups)}
    fig, axes = plt.subplots(1, len(pairs), figsize=(5.2 * len(pairs), 4.6), squeeze=False)
    for ax, (i, j) in zip(axes[0], pairs):
        if len(objectives) < 2:  # one objective: its values by the first parameter
            xs = [groups.index(json.dumps(p["params"].get(colour_by))) for p in ok]
            ys = [value(p, objectives[0]["metric"]) for p in ok]
            ax.scatter(xs, ys, c=[colour[json.dumps(p["params"].get(colour_by))] for p in ok], s=14)
            ax.set_xticks(range(len(groups)), [label(json.loads(g)) for g in groups], rotation=30)
            ax.set_ylabel(axis_name(objectives[0]))
            continue
        xo, yo = objectives[i], objectives[j]
        for g in groups:
            pts = [p for p in ok if json.dumps(p["params"].get(colour_by)) == g]
            xs = [value(p, xo["metric"]) for p in pts]
            ys = [value(p, yo["metric"]) for p in pts]
            keep = [(x, y) for x, y in zip(xs, ys) if x is not None and y is not None]
            if keep:
                ax.scatter(*zip(*keep), s=10, alpha=0.45, color=colour[g], label=label(json.loads(g)))
            front = [(value(p, xo["metric"]), value(p, yo["metric"])) for p in pts if p["on_front"]]
            front = [(x, y) for x, y in front if x is not None and y is not None]
            if front:
                ax.scatter(*zip(*front), s=46, color=colour[g], edgecolors="black", linewidths=1.2, zorder=3)
        ax.set_xlabel(axis_name(xo))
        ax.set_ylabel(axis_name(yo))
        maybe_log(ax, [value(p, xo["metric"]) for p in ok], "x")
        maybe_log(ax, [value(p, yo["metric"]) for p in ok], "y")
        ax.grid(alpha=0.3)
    if colour_by and len(objectives) >= 2:
        axes[0][0].legend(title=colour_by, fontsize=8, title_fontsize=8, loc="best")
    fig.suptitle(f"sweep {report['sweep']}: {len(ok)} points ran, {len(report['front'])} on the Pareto front "
                 f"(ringed)", fontsize=11)
    shown = any(o["metric"].startswith("quality.") for o in objectives)
    fig.tight_layout(rect=(0, footer(fig, report, shown), 1, 1))
    save_small(fig, out, 100)
    plt.close(fig)


def plot_effects(report, ok, out):
    objectives = list(report["objectives"])
    quality = quality_metric(report, [o["metric"] for o in objectives])
    if quality:
        objectives.append({"metric": quality, "direction": "max"})
    params = report["parameters"] or ["recipe"]
    rng = random.Random(0)
    fig, axes = plt.subplots(len(objectives), len(params), figsize=(3.4 * len(params), 2.8 * len(objectives)),
                             squeeze=False)
    for r, obj in enumerate(objectives):
        best = max if obj["direction"] == "max" else min
        for c, name in enumerate(params):
            ax = axes[r][c]
            get = (lambda p: p["params"].get(name)) if report["parameters"] else (lambda p: p["recipe"])
            cats = sorted({json.dumps(get(p)) for p in ok}, key=lambda s: sort_key(json.loads(s)))
            for k, cat in enumerate(cats):
                vals = [value(p, obj["metric"]) for p in ok if json.dumps(get(p)) == cat]
                vals = [v for v in vals if v is not None and math.isfinite(v)]
                if not vals:
                    continue
                ax.scatter([k + rng.uniform(-0.18, 0.18) for _ in vals], vals, s=6, alpha=0.35, color="tab:blue")
                vals.sort()
                ax.hlines(vals[len(vals) // 2], k - 0.3, k + 0.3, color="black", linewidth=1.5)
                ax.hlines(best(vals), k - 0.3, k + 0.3, color="tab:red", linewidth=1.5)
            ax.set_xticks(range(len(cats)), [label(json.loads(s)) for s in cats], rotation=30, fontsize=7)
            maybe_log(ax, [value(p, obj["metric"]) for p in ok], "y")
            if r == 0:
                ax.set_title(name, fontsize=9)
            if c == 0:
                ax.set_ylabel(axis_name(obj), fontsize=8)
            ax.tick_params(axis="y", labelsize=7)
            ax.grid(alpha=0.3, axis="y")
    fig.suptitle(f"sweep {report['sweep']}: each parameter's effect (black: median, red: best)", fontsize=11)
    shown = any(o["metric"].startswith("quality.") for o in objectives)
    fig.tight_layout(rect=(0, footer(fig, report, shown), 1, 1))
    save_small(fig, out, 90)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("report")
    ap.add_argument("--out-dir", required=True)
    args = ap.parse_args()
    try:
        with open(args.report, encoding="utf-8") as f:
            report = json.load(f)
        points = report["points"]
        report["objectives"], report["parameters"], report["front"], report["sweep"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"{args.report}: not a sweep report: {e}", file=sys.stderr)
        return 2
    ok = [p for p in points if p.get("status") == "ok"]
    if not ok:
        print(f"{args.report}: no point ran (status ok): nothing to plot", file=sys.stderr)
        return 2
    os.makedirs(args.out_dir, exist_ok=True)
    # Written to a temporary name and renamed, so an interrupted run leaves no partial PNG.
    for name, fn in (("front.png", plot_front), ("effects.png", plot_effects)):
        final = os.path.join(args.out_dir, name)
        tmp = final + f".tmp{os.getpid()}.png"
        fn(report, ok, tmp)
        os.replace(tmp, final)
    return 0


if __name__ == "__main__":
    sys.exit(main())
