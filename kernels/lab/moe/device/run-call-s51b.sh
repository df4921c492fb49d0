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
# 1.5B first: the shape a short call can still finish
[ $bl -gt 40 ] && BENCH_ARGS="${BENCH_ARGS-16384 1024 3584 8 2 16384 4096 14336 8 2}" bench_moe "${KERNELS:-auto}" "$bl"
echo "## done (${SECONDS} s)"
