#!/usr/bin/env python3
"""Draws the quinn bulk-transfer figure from the CSV `--example bulk` writes.

usage: plot.py BULK.csv OUT.png

Bars: median Gbit/s of each setup per cipher suite, whiskers from the slowest to the
fastest run, each labelled with its ratio to stock quinn on ring for the same suite.
Needs matplotlib (`pip install matplotlib`).
"""

import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)


def main(source: str, target: str) -> None:
    with open(source, newline="") as f:
        rows = list(csv.DictReader(f))
    suites = list(dict.fromkeys(r["suite"] for r in rows))
    setups = list(dict.fromkeys(r["setup"] for r in rows))
    cell = {(r["suite"], r["setup"]): r for r in rows}
    runs = max(int(r["runs"]) for r in rows)

    fig, ax = plt.subplots(figsize=(9, 4.8), dpi=110)
    width = 0.8 / len(setups)
    for k, setup in enumerate(setups):
        cells = [cell[(suite, setup)] for suite in suites]
        median = [float(c["gbps_median"]) for c in cells]
        low = [m - float(c["gbps_min"]) for m, c in zip(median, cells)]
        high = [float(c["gbps_max"]) - m for m, c in zip(median, cells)]
        xs = [i + (k - (len(setups) - 1) / 2) * width for i in range(len(suites))]
        ax.bar(xs, median, width, yerr=[low, high], capsize=3, label=setup)
        for x, m, h, c in zip(xs, median, high, cells):
            ax.annotate(
                f"{float(c['ratio_to_stock_ring']):.2f}×",
                (x, m + h),
                textcoords="offset points",
                xytext=(0, 3),
                ha="center",
                fontsize=7.5,
            )
    ax.set_xticks(range(len(suites)), suites)
    ax.set_ylabel("Gbit/s (median)")
    ax.set_title("quinn 0.11 bulk download over loopback: stock vs offloaded to quicseal")
    ax.legend(fontsize=8, loc="lower left")
    ax.grid(axis="y", alpha=0.3)
    fig.text(
        0.01,
        -0.02,
        f"Median of {runs} runs, whiskers min–max; labels: ratio to stock quinn on ring "
        "for the same suite. Loopback on a shared 2-core VM.",
        fontsize=7.5,
    )
    fig.tight_layout()
    fig.savefig(target, bbox_inches="tight")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
