#!/usr/bin/env bash
# The numbers docs/code-health.md quotes (issue 16), made anew from the working tree:
#   1. the largest main Java files (wc -l), the N largest (default 25);
#   2. the engine's package arrows: for every engine/src/main/java/moetune/engine/**.java, its
#      package -> each moetune.engine.X package (or other moetune module, in parentheses) it
#      imports, counted by file; two-way arrows are listed after.
# Usage: scripts/code-health.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-25}"

echo "## Largest main Java files (wc -l)"
git ls-files '*/src/main/java/*.java' | xargs wc -l | grep -v ' total$' | sort -rn | head -n "$n" || true # head may close the pipe early

echo
echo "## Engine package arrows (importing package -> imported package (files))"
root=engine/src/main/java/moetune/engine
arrows=$(
  git ls-files "$root/*.java" | while read -r f; do
    from=$(dirname "${f#"$root"/}" | tr / .)
    { grep -hoE '^import (static )?moetune\.[a-z0-9_.]+\.[A-Z]' "$f" || true; } |
      sed -E 's/^import (static )?moetune\.//; s/\.[A-Z]$//' |
      sort -u |
      while read -r to; do
        case "$to" in
          engine.*) to="${to#engine.}" ;;
          *) to="($to)" ;;
        esac
        if [ "$to" != "$from" ]; then echo "$from -> $to"; fi
      done
  done | sort | uniq -c | awk '{print $2, $3, $4, "(" $1 ")"}'
)
echo "$arrows"

echo
echo "## Two-way arrows"
echo "$arrows" | awk '{a[$1" "$3]=1} END {for (k in a) {split(k, p, " "); if ((p[2]" "p[1]) in a && p[1] < p[2]) print p[1] " <-> " p[2]}}' | sort
