#!/usr/bin/env bash
# Session 49's third device call, on the build that ships variant 56 as AUTO's path (family h: the
# h path before it): 1) the engine's whole GPU suite (--select-package=moetune.engine: the MoE op
# tests, the model's parity tests, recomputation's bit-identity, LoRA, the trainer); 2)
# MoeLayerBench of auto,h with the breakdown. Staging as run-call-s49.sh; then
# .device/main/run-call-s49c.sh SECONDS.
cd "$(dirname "$0")"
export OUT="${OUT:-/tmp/moetune-out}"
LIMIT=${1:-420}
mkdir -p "$OUT/suite"
OUT="$OUT/suite" SANITIZE=0 SELECT="--select-package=moetune.engine" \
  timeout -k 5 ${SUITE_LIMIT:-210} ./run-gpu-tests.sh > "$OUT/suite/run.log" 2>&1
sed 's/\x1b\[[0-9;]*m//g' "$OUT/suite/tests.log" > "$OUT/suite/plain.log"
echo "## suite (${SECONDS} s)"; grep -E "tests (found|successful|failed|aborted|skipped)|✘" "$OUT/suite/plain.log" | head -20
grep -A6 "✘" "$OUT/suite/plain.log" | cut -c1-300 | head -40
left=$((LIMIT - SECONDS - 10)); bl=$left; [ $bl -gt 220 ] && bl=220
echo "## bench ${KERNELS:-auto,h} (limit ${bl} s)"
BENCH_ARGS="${BENCH_ARGS-16384 4096 14336 8 2 16384 1024 3584 8 2}" MOE_BENCH_KERNELS=${KERNELS:-auto,h} BENCH_LIMIT=$bl CLOCKS=1 MOE_BENCH_BREAKDOWN=1 ./moe-breakdown.sh > "$OUT/bench.txt" 2>&1
grep -E "MOETUNE|bench exit|^([0-9:.]+ )?\| (16384|scatter2scatter|\*\*|layer|dense)" "$OUT/bench.txt" | cut -c1-200 | tail -50
echo "## done (${SECONDS} s)"
