#!/usr/bin/env bash
# Session 48's second device call: variant 39 (session 37's first product with its six store
# rounds issued by the producer warpgroup's TMA thread; on the H100 in session 38 Mixtral's fwd1
# 6.6% faster, 1.5B's 17% slower) as family v54 (AUTO with kernel39 for fwd1, dX2 still kernel25).
# Not in the build: `git apply kernels/lab/moe/v54-glufwd-helper-stores.patch` (on d55bf9f and later) first.
# Staging: scripts/device/stage.sh $PWD/.device/main, cp this file into .device/main/, then on the
# device from the repository root: .device/main/run-call-s48b.sh SECONDS (env BENCH_ARGS, KERNELS).
# 1) the three SwiGLU bitwise tests (V54 beside AUTO, V16, V11, V10) and MoeSassTest in a JVM of
# their own; 2) MoeLayerBench of auto, v54 (auto alone if the precheck failed) with the breakdown;
# 3) memcheck on the full-rows SwiGLU test if time is left.
cd "$(dirname "$0")"
export OUT="${OUT:-/tmp/moetune-out}"
LIMIT=${1:-300}
T=moetune.engine.backend.cuda.CudaMoeOpsTest
mkdir -p "$OUT/pre"
OUT="$OUT/pre" SANITIZE=0 \
  SELECT="--select-method=$T#swigluEpiloguesAreTheUnfusedOpsBitForBit --select-method=$T#swigluEpiloguesOverFewRowsAreTheUnfusedOpsBitForBit --select-method=$T#swigluEpiloguesOverLongerProductsAreTheUnfusedOpsBitForBit --select-class=moetune.engine.backend.cuda.MoeSassTest" \
  timeout -k 5 120 ./run-gpu-tests.sh > "$OUT/pre/run.log" 2>&1
sed 's/\x1b\[[0-9;]*m//g' "$OUT/pre/tests.log" > "$OUT/pre/plain.log"
echo "## precheck (${SECONDS} s)"; grep -E "tests (found|successful|failed|aborted)|✘" "$OUT/pre/plain.log" | head -20
grep -A6 "✘" "$OUT/pre/plain.log" | cut -c1-300 | head -30
if grep -qE "\[ +0 tests failed" "$OUT/pre/plain.log" && grep -qE "\[ +[1-9][0-9]* tests successful" "$OUT/pre/plain.log" \
  && ! grep -q "✘" "$OUT/pre/plain.log"; then
  K=${KERNELS:-auto,v54}
else K=auto; fi
left=$((LIMIT - SECONDS - 40)); bl=$left; [ $bl -gt 240 ] && bl=240
echo "## bench $K (limit ${bl} s)"
BENCH_ARGS="${BENCH_ARGS-16384 4096 14336 8 2 16384 1024 3584 8 2}" MOE_BENCH_KERNELS=$K BENCH_LIMIT=$bl CLOCKS=1 MOE_BENCH_BREAKDOWN=1 ./moe-breakdown.sh > "$OUT/bench.txt" 2>&1
grep -E "MOETUNE|bench exit|^([0-9:.]+ )?\| (16384|scatter2scatter|groupXtY|\*\*|layer|dense)" "$OUT/bench.txt" | cut -c1-230 | tail -60
left=$((LIMIT - SECONDS - 5))
if [ $left -gt 25 ]; then
  . ./java-env.sh
  timeout $left compute-sanitizer --tool memcheck --print-limit 10 $java "${jopts[@]}" -jar $launcher execute -cp "$cp" \
    --select-method=$T#swigluEpiloguesOverFewRowsAreTheUnfusedOpsBitForBit --include-tag=gpu --details=summary --disable-banner 2>&1 \
    | grep -E "ERROR SUMMARY|tests (successful|failed)"
fi
echo "## done (${SECONDS} s)"
