#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only
"""Plots of a live-frames run (bench/README.md), from the summary table that
bench/live_frames prints at its end: the last run in the given results file.

    bench/plot.py RESULTS.txt OUT_PREFIX

writes OUT_PREFIX-rate.png (packet rate against blocklist or set size, per
receiver) and OUT_PREFIX-ratios.png (every drop row's rate as a fraction of
the bare XDP_DROP measured in the same group and round). Rates are the CPU-time
ones (frames / CPU time of the run), the figures least moved by other users of
a shared machine; each point is the mean of the rounds, the bars span them.
Needs python3-matplotlib (Debian)."""
import re
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def last_table(path):
    text = open(path, encoding="utf-8").read()
    start = text.rfind("# connwatch live-frames benchmark")
    if start < 0:
        sys.exit(f"{path}: no live-frames run in it")
    rows = {}
    for line in text[start:].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 8 or cells[0] in ("row", "---") or cells[0].startswith("-"):
            continue
        key, label, _wall, cpu, _rwall, rcpu = cells[:6]
        nums = lambda s: [float(x) for x in re.findall(r"-?\d+\.\d+", s)]
        rows[key] = {"label": label, "mpps": nums(cpu), "ratio": nums(rcpu)}
    if not rows:
        sys.exit(f"{path}: the last run has no summary table (did it finish?)")
    return rows


SIZE = {"1": 1, "10k": 10_000, "1m": 1_000_000, "16m": 16_777_216}


def size_of(suffix):
    return SIZE.get(suffix) or int(suffix)


def series(rows, pattern):
    """[(entries, mean, low, high)] of the rows whose key matches pattern
    (one group: the size)."""
    out = []
    for key, r in rows.items():
        m = re.fullmatch(pattern, key)
        if m and r["mpps"]:
            v = r["mpps"]
            out.append((size_of(m.group(1)), sum(v) / len(v), min(v), max(v)))
    return sorted(out)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    rows = last_table(sys.argv[1])
    prefix = sys.argv[2]

    fig, ax = plt.subplots(figsize=(9, 5.5))
    lines = [
        (r"drop-g(\w+)", "bare XDP_DROP (same sender)", "k", "-"),
        (r"cw-same-(\w+)", "connwatch, one source", "tab:blue", "-"),
        (r"cw-same-(\w+)-nocache", "connwatch, one source, cache off", "tab:blue", ":"),
        (r"cw-spread-(\w+)", "connwatch, sources spread", "tab:orange", "-"),
        (r"cw-spread-(\w+)-nocache", "connwatch, spread, cache off", "tab:orange", ":"),
        (r"xdpf-(\w+)", "xdp-filter", "tab:green", "-"),
        (r"nft-(\w+)", "nftables netdev ingress, set", "tab:red", "-"),
        (r"ipset-(\w+)", "iptables raw + ipset", "tab:purple", "-"),
    ]
    for pattern, label, color, style in lines:
        s = series(rows, pattern)
        if not s:
            continue
        xs = [p[0] for p in s]
        ax.errorbar(xs, [p[1] for p in s],
                    yerr=[[p[1] - p[2] for p in s], [p[3] - p[1] for p in s]],
                    label=label, color=color, linestyle=style, marker="o", capsize=3)
    ax.set_xscale("log")
    ax.set_xlabel("entries in the blocklist / set")
    ax.set_ylabel("Mpps (frames / CPU time), one CPU")
    ax.set_title("Drop rate against blocklist size (live frames, veth, one sender)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(prefix + "-rate.png", dpi=110)

    # Ratios of every row that has a baseline.
    keys = [k for k, r in rows.items() if r["ratio"]]
    fig, ax = plt.subplots(figsize=(9, max(4, 0.28 * len(keys) + 1)))
    means = [sum(rows[k]["ratio"]) / len(rows[k]["ratio"]) for k in keys]
    lows = [m - min(rows[k]["ratio"]) for k, m in zip(keys, means)]
    highs = [max(rows[k]["ratio"]) - m for k, m in zip(keys, means)]
    y = list(range(len(keys)))
    colors = ["tab:blue" if k.startswith("cw-") else "tab:gray" for k in keys]
    ax.barh(y, means, xerr=[lows, highs], color=colors, capsize=2)
    ax.set_yticks(y)
    ax.set_yticklabels(keys, fontsize=7)
    ax.invert_yaxis()
    ax.axvline(0.9, color="tab:red", linestyle="--", linewidth=1, label="0.90")
    ax.axvline(1.0, color="k", linewidth=0.8)
    ax.set_xlabel("rate / the row's baseline (bench/README.md), CPU time, same round")
    ax.set_title("Each row against its baseline")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(prefix + "-ratios.png", dpi=110)
    print(f"{prefix}-rate.png, {prefix}-ratios.png")


if __name__ == "__main__":
    main()
