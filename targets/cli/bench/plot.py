#!/usr/bin/env python3
"""Draws the userspace datapath figure from the CSV `quicseal bench --csv` writes.

usage: plot.py FIGURES.csv OUT.png

Bars: median Gbit/s of each configuration, whiskers from the slowest to the fastest run,
the sealed bars labelled with their ratio to the unsealed bar of the same path.
Needs matplotlib (`pip install matplotlib`); `cargo xtask bench` runs it.
"""

import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

PATHS = ["GSO + GRO", "no GSO"]
PROTECTIONS = ["unsealed", "AES-128-GCM", "AES-256-GCM", "ChaCha20-Poly1305"]


def main(source: str, target: str) -> None:
    with open(source, newline="") as f:
        rows = {(r["path"], r["protection"]): r for r in csv.DictReader(f)}
    runs = max(int(r["runs"]) for r in rows.values())

    fig, ax = plt.subplots(figsize=(8.5, 4.6), dpi=110)
    width = 0.38
    xs = range(len(PROTECTIONS))
    for k, path in enumerate(PATHS):
        cells = [rows[(path, p)] for p in PROTECTIONS]
        median = [float(c["gbps_median"]) for c in cells]
        low = [m - float(c["gbps_min"]) for m, c in zip(median, cells)]
        high = [float(c["gbps_max"]) - m for m, c in zip(median, cells)]
        offset = [x + (k - 0.5) * width for x in xs]
        ax.bar(offset, median, width, yerr=[low, high], capsize=3, label=path)
        for x, m, h, c in zip(offset, median, high, cells):
            if c["protection"] != "unsealed":
                ax.annotate(
                    f"{float(c['ratio_to_unsealed']):.2f}×",
                    (x, m + h),
                    textcoords="offset points",
                    xytext=(0, 3),
                    ha="center",
                    fontsize=8,
                )
    ax.set_xticks(list(xs), PROTECTIONS)
    ax.set_ylabel("Gbit/s of UDP payload (median)")
    ax.set_title("quicseal userspace datapath over loopback: sealed vs unsealed")
    ax.legend(title="path")
    ax.grid(axis="y", alpha=0.3)
    fig.text(
        0.01,
        -0.02,
        f"1350-byte packets, 16 per send, one key update; median of {runs} runs, "
        "whiskers min–max; labels: ratio to unsealed on the same path. "
        "Loopback on a shared 2-core VM.",
        fontsize=7.5,
    )
    fig.savefig(target, bbox_inches="tight")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
