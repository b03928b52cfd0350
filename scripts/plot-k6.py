#!/usr/bin/env python3
"""Plots an on-sale k6 run from its CSV samples (k6 run --out csv=FILE): requests/s by kind,
p50/p95 latency of holds and payments per second, and tickets sold over time. Drawn with
matplotlib (pip install matplotlib).

    python3 scripts/plot-k6.py samples.csv.gz plot.png
"""
import csv
import gzip
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def quantile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def main(src, dst):
    opener = gzip.open if src.endswith(".gz") else open
    reqs = defaultdict(lambda: defaultdict(int))  # second -> kind -> count
    latency = defaultdict(lambda: defaultdict(list))  # kind -> second -> [ms]
    tickets = defaultdict(float)
    t0 = None
    with opener(src, "rt", newline="") as f:
        for row in csv.DictReader(f):
            t = int(float(row["timestamp"]))
            t0 = t if t0 is None else min(t0, t)
            name = row.get("name") or ""
            kind = name if name in ("join", "status", "seat map", "hold", "pay") else "other"
            if row["metric_name"] == "http_reqs":
                reqs[t][kind] += 1
            elif row["metric_name"] == "http_req_duration" and kind in ("hold", "pay"):
                latency[kind][t].append(float(row["metric_value"]))
            elif row["metric_name"] == "onsale_tickets":
                tickets[t] += float(row["metric_value"])
    if t0 is None:
        sys.exit("no samples")
    end = max(reqs) if reqs else t0
    xs = list(range(t0, end + 1))
    rel = [x - t0 for x in xs]
    fig, (ax1, ax2, ax3) = plt.subplots(3, 1, figsize=(10, 10), sharex=True)
    for kind in ("join", "status", "seat map", "hold", "pay"):
        ax1.plot(rel, [reqs[x][kind] for x in xs], label=kind, linewidth=1)
    ax1.set_ylabel("requests/s")
    ax1.set_title("On-sale: requests per second by kind")
    ax1.legend(loc="upper right", fontsize="small")
    for kind, color in (("hold", "tab:red"), ("pay", "tab:blue")):
        seconds = sorted(latency[kind])
        ax2.plot([s - t0 for s in seconds], [quantile(latency[kind][s], 0.5) for s in seconds],
                 color=color, linewidth=1, label=f"{kind} p50")
        ax2.plot([s - t0 for s in seconds], [quantile(latency[kind][s], 0.95) for s in seconds],
                 color=color, linewidth=1, linestyle="--", label=f"{kind} p95")
    ax2.set_ylabel("latency (ms)")
    ax2.set_title("Hold and payment latency per second")
    ax2.legend(loc="upper right", fontsize="small")
    total, cumulative = 0.0, []
    for x in xs:
        total += tickets.get(x, 0.0)
        cumulative.append(total)
    ax3.plot(rel, cumulative, color="tab:green")
    ax3.set_ylabel("tickets (paid holds)")
    ax3.set_xlabel("seconds since the run started")
    ax3.set_title("Tickets sold")
    fig.tight_layout()
    fig.savefig(dst, dpi=110)
    print(f"plot written to {dst}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
