#!/usr/bin/env python3
"""Plots an on-sale of `imticket-bench onsale` (scripts/bench-onsale.sh) from its CSV
(`seconds_since_opening,kind,latency_ms,status`, one line per request): requests/s by kind,
then p50/p95/p99 latency per second of holds, payments and status polls, each against its
target (hold and pay p99 < 1 s, status p99 < 300 ms). Drawn with matplotlib.

    python3 scripts/plot-onsale.py onsale.csv plot.png "title"
"""
import csv
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def quantile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def main(src, dst, title):
    reqs = defaultdict(lambda: defaultdict(int))  # second -> kind -> count
    latency = defaultdict(lambda: defaultdict(list))  # kind -> second -> [ms]
    with open(src, newline="") as f:
        for row in csv.DictReader(f):
            t = int(float(row["seconds_since_opening"]) // 1)
            kind = row["kind"]
            reqs[t][kind] += 1
            latency[kind][t].append(float(row["latency_ms"]))
    seconds = list(range(min(reqs), max(reqs) + 1)) if reqs else []
    kinds = ["status", "hold", "pay", "leave"]
    targets = {"hold": 1000, "pay": 1000, "status": 300}
    fig, axes = plt.subplots(4, 1, figsize=(11, 13), sharex=True)
    ax = axes[0]
    for kind in kinds:
        ax.plot(seconds, [reqs[s].get(kind, 0) for s in seconds], label=kind)
    ax.set_ylabel("requests/s")
    ax.set_title(title)
    ax.legend(loc="upper right")
    ax.grid(alpha=0.3)
    for ax, kind in zip(axes[1:], ["hold", "pay", "status"]):
        xs = sorted(latency[kind])
        for q, style in ((0.5, "-"), (0.95, "--"), (0.99, ":")):
            ax.plot(xs, [quantile(latency[kind][s], q) for s in xs], style, label=f"p{int(q * 100)}")
        ax.axhline(targets[kind], color="red", linewidth=0.8, label=f"target p99 < {targets[kind]} ms")
        ax.set_ylabel(f"{kind} latency (ms)")
        ax.legend(loc="upper right")
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("seconds since the opening")
    fig.tight_layout()
    fig.savefig(dst, dpi=90)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else "on-sale")
