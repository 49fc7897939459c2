#!/usr/bin/python3
"""One PNG per simulator run: where the units were busy, and how close each operator came to its roofline.

Usage: plot_sim.py RESULT.json --out RUN.png [--dpi N]

RESULT.json is what `fpqvar simulate --json` writes (sim::run_result_to_json). The figure has three panels:
  (a) utilization per unit per phase: busy cycles of the unit in the phase / the phase's cycles (heatmap; the last
      column is the whole run). A phase's cycles run from the previous phase's last finish to its own; a unit that
      worked ahead (a weight prefetch issued during the previous phase) can exceed 100 % of a short phase, and so can
      a buffer with two ports (each port's busy cycles count).
  (b) roofline of the MAC units (pe_array, fp_array): one point per (phase, op) group at
      x = work / DRAM bytes (MAC/B), y = work / span (MAC/cycle), under each unit's compute roof (its peak work per
      cycle, from the run's own utilization figures) and the DRAM roof y = x * DRAM B/cycle, where
      DRAM B/cycle = sum(dram.channel_gbps) * 1e9 * dram.efficiency / clock_hz (the simulator's own formula).
  (c) the same for the element-wise units (sfu, quantizer, hadamard): elements/cycle against elements/B.
A group that moves no DRAM byte has no finite intensity; it is drawn at the right edge with a '>' marker.

The PNG is written to a temporary file beside --out and renamed into place, so a failed run leaves no partial
PNG. Exit status: 0 done, 2 a bad or unreadable RESULT.json or output path, 3 matplotlib is not installed.
Only the Python standard library and matplotlib (Debian: python3-matplotlib) are needed.
"""

import argparse
import json
import math
import os
import sys
import tempfile

MAC_UNITS = ["pe_array", "fp_array"]
ELEMENT_UNITS = ["sfu", "quantizer", "hadamard"]
# Heatmap rows, datapath first, then the memory system.
UNIT_ORDER = ["pe_array", "fp_array", "accumulate", "sfu", "quantizer", "hadamard", "dram", "dma", "weight_buffer",
              "act_buffer", "kv_buffer", "psum_buffer"]
UNIT_COLOURS = {"pe_array": "tab:blue", "fp_array": "tab:orange", "sfu": "tab:green", "quantizer": "tab:red",
                "hadamard": "tab:purple"}


class BadInput(Exception):
    pass


def need(obj, key, where, kind=None):
    """obj[key], or BadInput naming the path when it is missing or of the wrong JSON type."""
    if not isinstance(obj, dict) or key not in obj:
        raise BadInput(f"missing key '{key}' in {where}")
    value = obj[key]
    if kind is not None and (not isinstance(value, kind) or isinstance(value, bool) and kind is not bool):
        raise BadInput(f"'{where}.{key}' is not {kind_name(kind)}")
    return value


def kind_name(kind):
    names = {dict: "an object", list: "an array", str: "a string", (int, float): "a number", int: "an integer"}
    return names.get(kind, str(kind))


NUMBER = (int, float)


def finite(x, where):
    if not math.isfinite(x):
        raise BadInput(f"'{where}' is not finite")
    return x


def load(path):
    try:
        with open(path, "rb") as f:
            text = f.read()
    except OSError as e:
        raise BadInput(f"cannot read: {e.strerror}") from None
    try:
        j = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BadInput(f"not JSON ({e})") from None
    if not isinstance(j, dict):
        raise BadInput("the top level is not an object")
    return j


def phase_label(phase, scales):
    if phase < 0:
        return "image"
    if phase >= scales:
        return "decoder"
    return str(phase)


def parse(j):
    """The figures the plot needs, checked."""
    run = {
        "model": need(j, "model", "result", str),
        "config_name": need(j, "config_name", "result", str),
        "recipe": j.get("recipe") if isinstance(j.get("recipe"), str) else "fp (none)",
        "batch": need(j, "batch", "result", int),
        "cycles": need(j, "cycles", "result", int),
        "clock_hz": finite(need(j, "clock_hz", "result", NUMBER), "clock_hz"),
        "images_per_s": need(j, "images_per_s", "result", NUMBER),
        "energy_j_per_image": need(j, "energy_j_per_image", "result", NUMBER),
    }
    if run["clock_hz"] <= 0 or run["cycles"] < 0:
        raise BadInput("clock_hz must be positive and cycles non-negative")
    config = need(j, "config", "result", dict)
    dram = need(config, "dram", "config", dict)
    gbps = need(need(dram, "channel_gbps", "config.dram", dict), "value", "config.dram.channel_gbps", list)
    if not gbps or not all(isinstance(g, NUMBER) and not isinstance(g, bool) and g > 0 for g in gbps):
        raise BadInput("config.dram.channel_gbps.value is not a list of positive numbers")
    eff = need(need(dram, "efficiency", "config.dram", dict), "value", "config.dram.efficiency", NUMBER)
    if not 0 < eff <= 1:
        raise BadInput("config.dram.efficiency.value is not in (0, 1]")
    run["dram_bytes_per_cycle"] = sum(gbps) * 1e9 * eff / run["clock_hz"]

    units = {}
    for i, u in enumerate(need(j, "units", "result", list)):
        where = f"units[{i}]"
        name = need(u, "unit", where, str)
        units[name] = {
            "busy_cycles": need(u, "busy_cycles", where, int),
            "busy_fraction": need(u, "busy_fraction", where, NUMBER),
            "utilization": need(u, "utilization", where, NUMBER),
            "work": need(u, "work", where, int),
            "work_unit": need(u, "work_unit", where, str),
        }
    # Peak work per cycle of each unit: utilization = work / (peak * cycles), so peak = work / (utilization * cycles).
    for u in units.values():
        u["peak"] = (u["work"] / (u["utilization"] * run["cycles"])
                     if u["utilization"] > 0 and run["cycles"] > 0 else None)

    phases = []
    for i, p in enumerate(need(j, "phases", "result", list)):
        where = f"phases[{i}]"
        pu = need(p, "units", where, dict)
        phases.append({
            "phase": need(p, "phase", where, int),
            "finish_cycle": need(p, "finish_cycle", where, int),
            "busy": {name: need(v, "busy_cycles", f"{where}.units.{name}", int) for name, v in pu.items()},
        })
    ops = []
    for i, o in enumerate(need(j, "ops", "result", list)):
        where = f"ops[{i}]"
        ops.append({
            "phase": need(o, "phase", where, int),
            "scale": need(o, "scale", where, int),
            "op": need(o, "op", where, str),
            "unit": need(o, "unit", where, str),
            "work": need(o, "work", where, int),
            "dram_bytes": need(o, "dram_bytes", where, int),
            "span_cycles": need(o, "span_cycles", where, int),
        })
    # The number of scales: the ops name their scale (-1 for the per-image part and the decoder, whose phase is S).
    run["scales"] = max((o["scale"] for o in ops), default=-1) + 1
    return run, units, phases, ops


def utilization_matrix(run, units, phases):
    """Rows: units present in the run (UNIT_ORDER first); columns: phases, then the whole run."""
    names = [n for n in UNIT_ORDER if n in units] + sorted(n for n in units if n not in UNIT_ORDER)
    cols = [phase_label(p["phase"], run["scales"]) for p in phases] + ["run"]
    matrix = []
    for n in names:
        row, prev = [], 0
        for p in phases:
            cyc = p["finish_cycle"] - prev
            prev = p["finish_cycle"]
            row.append(p["busy"].get(n, 0) / cyc if cyc > 0 else 0.0)
        row.append(units[n]["busy_fraction"])
        matrix.append(row)
    return names, cols, matrix


def roofline_panel(ax, run, units, ops, unit_names, work_unit, title):
    import matplotlib.ticker as ticker

    groups = [o for o in ops if o["unit"] in unit_names and o["work"] > 0 and o["span_cycles"] > 0]
    bpc = run["dram_bytes_per_cycle"]
    xs = [o["work"] / o["dram_bytes"] for o in groups if o["dram_bytes"] > 0]
    ys = [o["work"] / o["span_cycles"] for o in groups]
    peaks = {n: units[n]["peak"] for n in unit_names if n in units and units[n]["peak"]}
    if not groups and not peaks:
        ax.text(0.5, 0.5, "no work on these units in this run", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(title, fontsize=10)
        ax.set_axis_off()
        return
    top_peak = max(peaks.values(), default=max(ys, default=1.0))
    # x range: from where the DRAM roof is well below the lowest point to past the ridge points and the points.
    ridge = [p / bpc for p in peaks.values()]
    x_lo = min(xs + ridge) / 4
    x_hi = max(xs + ridge) * 8
    x_edge = x_hi / 1.6  # where groups without DRAM traffic are drawn
    y_lo = min(ys + [top_peak]) / 4
    y_hi = top_peak * 3

    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(x_lo, x_hi)
    ax.set_ylim(y_lo, y_hi)
    # DRAM roof: y = bpc * x, up to the highest compute roof.
    x_top = min(x_hi, top_peak / bpc)
    ax.plot([x_lo, x_top], [bpc * x_lo, bpc * x_top], color="black", lw=1.2, ls="--",
            label=f"DRAM roof {bpc:.1f} B/cycle")
    for n, p in peaks.items():
        c = UNIT_COLOURS.get(n, "grey")
        ax.plot([p / bpc, x_hi], [p, p], color=c, lw=1.5)
        ax.text(x_hi / 1.05, p * 1.08, f"{n} peak {p:,.0f} {work_unit}/cycle", color=c, fontsize=7, ha="right",
                va="bottom")
    # Points: area by span cycles (where the time went), colour by unit.
    total_span = sum(o["span_cycles"] for o in groups) or 1
    for n in unit_names:
        mine = [o for o in groups if o["unit"] == n]
        if not mine:
            continue
        c = UNIT_COLOURS.get(n, "grey")
        for finite_x in (True, False):
            sel = [o for o in mine if (o["dram_bytes"] > 0) == finite_x]
            if not sel:
                continue
            ax.scatter([o["work"] / o["dram_bytes"] if finite_x else x_edge for o in sel],
                       [o["work"] / o["span_cycles"] for o in sel],
                       s=[12 + 400 * o["span_cycles"] / total_span for o in sel], color=c, alpha=0.55,
                       marker="o" if finite_x else ">", edgecolors="black", linewidths=0.3,
                       label=f"{n} ({len(sel)} groups{'' if finite_x else ', no DRAM bytes'})")
    # Number the groups that took the most time and name them under the panel (names beside the points overlap;
    # groups drawn at the same place share one label, "3,4").
    lines, labels = [], {}
    for rank, o in enumerate(sorted(groups, key=lambda o: -o["span_cycles"])[:6], start=1):
        x = o["work"] / o["dram_bytes"] if o["dram_bytes"] > 0 else x_edge
        y = o["work"] / o["span_cycles"]
        roof = min(peaks.get(o["unit"], math.inf), bpc * x if o["dram_bytes"] > 0 else math.inf)
        of_roof = f"{100 * y / roof:.2g} %" if math.isfinite(roof) else "?"
        labels.setdefault((round(math.log10(x), 2), round(math.log10(y), 2)), (x, y, []))[2].append(str(rank))
        lines.append(f"{rank}  {o['op']:<16} {phase_label(o['phase'], run['scales']):>7}  "
                     f"{100 * o['span_cycles'] / total_span:9.1f} %  {y:12.3g}  {of_roof:>10}")
    for x, y, ranks in labels.values():
        ax.annotate(",".join(ranks), (x, y), xytext=(3, 3), textcoords="offset points", fontsize=7,
                    fontweight="bold")
    if lines:
        header = (f"the longest (phase, op) groups, numbered at their points:\n"
                  f"#  {'op':<16} {'phase':>7}  {'of the span':>11}  {work_unit + '/cycle':>12}  {'of its roof':>10}")
        ax.text(0.0, -0.13, header + "\n" + "\n".join(lines), transform=ax.transAxes, fontsize=7, va="top",
                ha="left", family="monospace")
    ax.xaxis.set_major_locator(ticker.LogLocator(base=10))
    ax.yaxis.set_major_locator(ticker.LogLocator(base=10))
    ax.grid(True, which="major", lw=0.4, alpha=0.5)
    ax.set_xlabel(f"arithmetic intensity: work / DRAM bytes ({work_unit}/B)")
    ax.set_ylabel(f"attained: work / span ({work_unit}/cycle)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="lower right", markerscale=0.6)


def plot(run, units, phases, ops, out, dpi):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names, cols, matrix = utilization_matrix(run, units, phases)
    fig = plt.figure(figsize=(14, 13), dpi=dpi)
    grid = fig.add_gridspec(2, 2, height_ratios=[1.0, 1.15], hspace=0.25, wspace=0.2, top=0.94, bottom=0.16,
                            left=0.09, right=0.97)
    ax = fig.add_subplot(grid[0, :])
    if names and cols:
        shown = [[min(v, 1.0) for v in row] for row in matrix]
        im = ax.imshow(shown, aspect="auto", cmap="viridis", vmin=0.0, vmax=1.0)
        ax.set_xticks(range(len(cols)), labels=cols)
        ax.set_yticks(range(len(names)), labels=names)
        ax.axvline(len(cols) - 1.5, color="white", lw=2)
        for r, row in enumerate(matrix):
            for c, v in enumerate(row):
                ax.text(c, r, f"{100 * v:.0f}", ha="center", va="center", fontsize=7.5,
                        color="black" if v > 0.6 else "white")
        cb = fig.colorbar(im, ax=ax, fraction=0.025, pad=0.01)
        cb.set_label("busy cycles / phase cycles")
        cb.ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.set_xlabel("phase (image: class embedding and AdaLN; 0..: scales; decoder: VQ-VAE; run: whole run)")
    ax.set_title("(a) busy cycles per unit per phase, % of the phase's cycles (colour capped at 100 %; a two-port "
                 "buffer counts both ports, and work issued ahead of a phase counts in it)", fontsize=10)

    mac_unit = next((units[n]["work_unit"] for n in MAC_UNITS if n in units), "MAC")
    el_unit = next((units[n]["work_unit"] for n in ELEMENT_UNITS if n in units), "elements")
    roofline_panel(fig.add_subplot(grid[1, 0]), run, units, ops, MAC_UNITS, mac_unit,
                   "(b) roofline, MAC units: one point per (phase, op), area ~ span")
    roofline_panel(fig.add_subplot(grid[1, 1]), run, units, ops, ELEMENT_UNITS, el_unit,
                   "(c) roofline, element-wise units: one point per (phase, op), area ~ span")

    latency = run["cycles"] / run["clock_hz"]
    fig.suptitle(f"{run['model']} on {run['config_name']}, recipe {run['recipe']}, batch {run['batch']}: "
                 f"{run['cycles']:,} cycles at {run['clock_hz'] / 1e6:.0f} MHz = {latency:.3f} s, "
                 f"{run['images_per_s']:.3f} images/s, {run['energy_j_per_image']:.2f} J/image", fontsize=12)

    directory = os.path.dirname(os.path.abspath(out))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(out) + ".", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it 0600; the PNG gets the usual permissions
        with os.fdopen(fd, "wb") as f:
            fig.savefig(f, format="png", dpi=dpi)
        os.replace(tmp, out)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    finally:
        plt.close(fig)


def main(argv):
    ap = argparse.ArgumentParser(description="Plot one `fpqvar simulate --json` result as a PNG.")
    ap.add_argument("result", help="the JSON `fpqvar simulate --json` wrote")
    ap.add_argument("--out", required=True, help="the PNG to write (atomically)")
    ap.add_argument("--dpi", type=int, default=100, help="resolution (default 100: a 1400 x 1300 image)")
    a = ap.parse_args(argv)
    if not 20 <= a.dpi <= 600:
        print(f"plot_sim: --dpi {a.dpi} is outside 20..600", file=sys.stderr)
        return 2
    try:
        run, units, phases, ops = parse(load(a.result))
    except BadInput as e:
        print(f"plot_sim: {a.result}: {e}", file=sys.stderr)
        return 2
    directory = os.path.dirname(os.path.abspath(a.out))
    if not os.path.isdir(directory) or not os.access(directory, os.W_OK):
        print(f"plot_sim: {a.out}: cannot write: {directory} is not a writable folder", file=sys.stderr)
        return 2
    try:
        import matplotlib  # noqa: F401
    except ImportError as e:
        print(f"plot_sim: matplotlib cannot be imported by {sys.executable} ({e}); on Debian: "
              f"apt-get install python3-matplotlib (tools/install_deps.sh), or point FPQVAR_PYTHON at a Python "
              f"that has it", file=sys.stderr)
        return 3
    try:
        plot(run, units, phases, ops, a.out, a.dpi)
    except OSError as e:
        print(f"plot_sim: {a.out}: cannot write: {e.strerror or e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
