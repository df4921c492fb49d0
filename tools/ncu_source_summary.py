#!/usr/bin/env python3
"""Summarises an Nsight Compute source page exported as CSV (ncu -i REPORT --page source --csv
--print-source sass): the SASS instructions with the most warp-state samples, and the samples
summed by opcode and, where the export has them, by stall reason, then per warp role: the SASS
split at each `setmaxnreg` (USETMAXREG: where a warp-specialised kernel's producer, consumer and
epilogue warpgroups begin), each part's share of the samples and the share of its samples spent in
mbarrier wait loops (a SYNCS.PHASECHK...TRYWAIT and the branch after it), by barrier operand.
Used by scripts/device/ncu-source.sh; prints plain text tables.

usage: ncu_source_summary.py FILE.csv [TOP]
"""
import csv
import re
import sys
from collections import defaultdict


def number(text):
    text = (text or "").replace(",", "").strip()
    try:
        return float(text)
    except ValueError:
        return None


def instruction(row, src):
    """The SASS text of a row without its predicate (@P0, @!UP1, ...)."""
    return re.sub(r"^@!?U?P\w+\s+", "", row[src].strip())


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    path = sys.argv[1]
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 40
    with open(path, newline="", errors="replace") as f:
        lines = f.read().splitlines()
    # ncu may print lines before the table: the header is the first row naming "Source"
    start = next((i for i, l in enumerate(lines) if '"Source"' in l or l.startswith("Source,")), None)
    if start is None:
        sys.exit(f"{path}: no source table (first lines: {lines[:3]})")
    rows = list(csv.reader(lines[start:]))
    header, body = rows[0], [r for r in rows[1:] if len(r) == len(rows[0])]
    print(f"{path}: {len(body)} SASS rows; columns: {header}")
    src = header.index("Source")
    addr = next((i for i, h in enumerate(header) if h.lower().startswith("address")), None)
    total = next((i for i, h in enumerate(header) if "Sampling (All" in h), None)
    if total is None:
        sys.exit("no 'Warp Stall Sampling (All Samples)' column")
    reasons = [
        i
        for i, h in enumerate(header)
        # the "(Not Issued)" twins of each reason are a subset of it: summed beside it they
        # listed every reason twice
        if i not in (src, addr, total)
        and re.search(r"stall", h, re.I)
        and not re.search(r"not[- ]issued", h, re.I)
    ]
    samples = [(number(r[total]) or 0.0, r) for r in body]
    all_samples = sum(s for s, _ in samples) or 1.0
    print(f"total samples {all_samples:.0f}")
    print(f"\ntop {top} instructions by samples (% of all):")
    for s, r in sorted(samples, key=lambda x: -x[0])[:top]:
        a = r[addr] if addr is not None else ""
        print(f"  {100 * s / all_samples:5.1f}%  {a:>8}  {r[src].strip()[:90]}")
    by_op = defaultdict(float)
    for s, r in samples:
        text = instruction(r, src)
        op = text.split(" ")[0] if text else "?"
        by_op[op.split(".")[0]] += s
    print("\nsamples by opcode:")
    for op, s in sorted(by_op.items(), key=lambda x: -x[1])[:25]:
        print(f"  {100 * s / all_samples:5.1f}%  {op}")
    roles(samples, src, addr, all_samples)
    if reasons:
        print("\nsamples by column (stall reasons where exported):")
        sums = [(header[i], sum(number(r[i]) or 0.0 for r in body)) for i in reasons]
        for name, s in sorted(sums, key=lambda x: -x[1])[:25]:
            print(f"  {s:12.0f}  {name}")


def roles(samples, src, addr, all_samples):
    """Samples per part of the SASS between setmaxnreg instructions, with their mbarrier waits."""
    order = samples
    if addr is not None:
        order = sorted(samples, key=lambda x: int(x[1][addr], 16) if x[1][addr] else 0)
    parts = [["before the first setmaxnreg", 0.0, defaultdict(float)]]
    previous_wait = None
    for s, r in order:
        text = instruction(r, src)
        if text.startswith("USETMAXREG"):
            parts.append([f"from {text[:48]}", 0.0, defaultdict(float)])
        part = parts[-1]
        part[1] += s
        if "TRYWAIT" in text:
            barrier = re.search(r"\[[^]]*\]", text)
            previous_wait = barrier.group(0) if barrier else "?"
            part[2][previous_wait] += s
        elif text.startswith("BRA") and previous_wait is not None:
            part[2][previous_wait] += s  # the wait loop's branch back to its try
            previous_wait = None
        else:
            previous_wait = None
    if len(parts) == 1:
        return
    print("\nsamples per warp role (the SASS split at each setmaxnreg; a part after the roles'")
    print("code, such as the producer's, keeps its last setmaxnreg's name):")
    for name, s, waits in parts:
        if s == 0:
            continue
        print(f"  {100 * s / all_samples:5.1f}% of all  {name}")
        for barrier, w in sorted(waits.items(), key=lambda x: -x[1])[:4]:
            print(f"          {100 * w / s:5.1f}% of the part's waiting on mbarrier {barrier}")


if __name__ == "__main__":
    main()
