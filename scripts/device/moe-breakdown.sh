#!/usr/bin/env bash
# One device call from the staged folder (scripts/device/stage.sh .device/NAME stages this script
# there): MoeLayerBench (what `moetune bench moe --breakdown` prints) with the per-op breakdown
# of the layer's forward+backward on the three shapes of issue 10, dense cuBLAS in the same run.
# MOE_BENCH_KERNELS / BENCH_ARGS / MOETUNE_MOE_* pass through; BENCH_LIMIT caps the bench (s);
# MOE_BENCH_BREAKDOWN picks the breakdowns (default 1; with variant 48's lab patch also written or both).
set -uo pipefail
cd "$(dirname "$0")"
OUT="${OUT:-/tmp/moetune-out}"; mkdir -p "$OUT" /tmp/mt
. ./java-env.sh  # java and cp, the runtime and the kernels' fatbin unpacked
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader
# CLOCKS=1: the SM clock, power and throttle reasons every 100 ms beside the bench ($OUT/clocks.csv),
# and the bench's lines stamped with the time they were printed, to read which stretch ran at what clock
if [ "${CLOCKS:-0}" = 1 ]; then
  nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,temperature.gpu,clocks_event_reasons.active \
    --format=csv,noheader -lms 100 > "$OUT/clocks.csv" 2>&1 &
  smi=$!
fi
stamp() { if [ "${CLOCKS:-0}" = 1 ]; then while IFS= read -r l; do printf '%s %s\n' "$(date +%H:%M:%S.%N | cut -c1-12)" "$l"; done; else cat; fi; }
MOE_BENCH_V2=0 MOE_BENCH_BREAKDOWN="${MOE_BENCH_BREAKDOWN:-1}" timeout -k 5 "${BENCH_LIMIT:-150}" \
  "$java" --enable-native-access=ALL-UNNAMED -Xmx24g -cp "$cp" moetune.engine.backend.cuda.MoeLayerBench \
  ${BENCH_ARGS:-} 2>&1 | stamp > "$OUT/moe-breakdown.log"
echo "bench exit ${PIPESTATUS[0]}"
if [ "${CLOCKS:-0}" = 1 ]; then
  kill "$smi" 2>/dev/null
  # the clock and power per stretch of the log (tools/clock_stretches.py, which stage.sh stages here)
  python3 clock_stretches.py "$OUT/clocks.csv" "$OUT/moe-breakdown.log" \
    || echo "clock_stretches.py: not beside $(pwd) (scripts/device/stage.sh stages it); raw samples in $OUT/clocks.csv"
fi
grep -E "^([0-9:.]+ )?(MOETUNE|\||.*rror|.*xception)" "$OUT/moe-breakdown.log" | head -150
