#!/usr/bin/env python3
"""Prints two moetune runs' training losses side by side (metrics.jsonl of each) and the largest
relative difference. Exit status 1 if the runs' steps differ or any loss is not finite; the
bound on the difference is for the reader: bf16 against float32 drifts by design."""
import json
import math
import sys


def losses(path):
    out = {}
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            if r.get("type", "step") == "step" and "loss" in r:
                out[r["step"]] = r["loss"]
    return out


def main():
    a, b = losses(sys.argv[1]), losses(sys.argv[2])
    if sorted(a) != sorted(b) or not a:
        print(f"steps differ: {len(a)} vs {len(b)}")
        return 1
    worst = 0.0
    print(f"{'step':>5} {'run A':>10} {'run B':>10} {'rel diff':>9}")
    for s in sorted(a):
        x, y = a[s], b[s]
        if not (math.isfinite(x) and math.isfinite(y)):
            print(f"step {s}: non-finite loss {x} {y}")
            return 1
        rel = abs(x - y) / max(abs(x), 1e-12)
        worst = max(worst, rel)
        if s in (1, 2, 5) or s % 10 == 0:
            print(f"{s:>5} {x:>10.4f} {y:>10.4f} {rel:>9.2e}")
    print(f"largest relative difference over {len(a)} steps: {worst:.3e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
