#!/usr/bin/env bash
# Session 51's second build's device call, on the shipped build (HEAD, variant 56 as AUTO in the
# natural order, no patch): 1) the engine's whole GPU suite (--select-package=moetune.engine);
# 2) MoeLayerBench of auto with the breakdown in the seconds left (1.5B first).
# Staging: scripts/device/stage.sh $PWD/.device/main, this file copied into .device/main/; then
# .device/main/run-call-s51b.sh SECONDS from the repository root.
cd "$(dirname "$0")"
export OUT="${OUT:-/tmp/moetune-out}"
LIMIT=${1:-300}
. ./select-tests.sh
select_tests suite "${SUITE_LIMIT:-160}" "--select-package=moetune.engine"
grep -E "■|✘" "$OUT/suite/plain.log" | cut -c1-200 | head -10
left=$((LIMIT - SECONDS - 10)); bl=$left; [ $bl -gt 200 ] && bl=200
if [ $bl -gt 40 ]; then
  echo "## bench ${KERNELS:-auto} (limit ${bl} s)"
  BENCH_ARGS="${BENCH_ARGS-16384 1024 3584 8 2 16384 4096 14336 8 2}" MOE_BENCH_KERNELS=${KERNELS:-auto} BENCH_LIMIT=$bl CLOCKS=1 MOE_BENCH_BREAKDOWN=1 ./moe-breakdown.sh > "$OUT/bench.txt" 2>&1
  grep -E "MOETUNE|bench exit|^([0-9:.]+ )?\| (16384|scatter2scatter|\*\*|layer|dense)" "$OUT/bench.txt" | cut -c1-200 | tail -50
fi
echo "## done (${SECONDS} s)"
