#!/usr/bin/env python3
"""The GPU's SM clock and power per stretch of a stamped bench log (scripts/device/moe-breakdown.sh
with CLOCKS=1): clocks.csv is nvidia-smi's timestamp, clocks.sm, power.draw, temperature.gpu,
clocks_event_reasons.active every 100 ms; the log's lines start with the time they were printed.
A stretch runs from one printed table row or family line to the next; samples under 250 W (idle,
the host between runs) are left out.

usage: clock_stretches.py clocks.csv moe-breakdown.log
"""
import re
import statistics
import sys


def seconds(hms):
    h, m, s = hms.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def main(clocks_path, log_path):
    samples = []
    for line in open(clocks_path):
        f = [x.strip() for x in line.split(",")]
        try:
            samples.append((seconds(f[0].split()[1]), float(f[1].split()[0]),
                            float(f[2].split()[0]), f[4]))
        except (IndexError, ValueError):
            continue  # a header or an error line from nvidia-smi
    marks = []  # (time, what the line that ends the stretch says)
    for line in open(log_path):
        stamp, _, text = line.rstrip("\n").partition(" ")
        if text.startswith("MOETUNE_MOE_KERNEL"):
            marks.append((seconds(stamp), text))
        elif re.match(r"\| \d+, \d+", text):  # a shape's timed row or its breakdown's header
            marks.append((seconds(stamp), text.split("|")[1].strip()))
    print("| stretch ending at | busy samples | median SM MHz | range | median W | throttle reasons (mode) |")
    print("|---|---|---|---|---|---|")
    for (t0, _), (t1, what) in zip(marks, marks[1:]):
        busy = [s for s in samples if t0 <= s[0] < t1 and s[2] > 250]
        if not busy:
            continue
        mhz = [s[1] for s in busy]
        print(f"| {what} | {len(busy)} | {statistics.median(mhz):.0f} | {min(mhz):.0f}-{max(mhz):.0f}"
              f" | {statistics.median(s[2] for s in busy):.0f} | {statistics.mode(s[3] for s in busy)} |")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
