#!/usr/bin/env bash
# Session 49's second device call: variant 56's second build (the first product's factors box by
# box, kernel56 fwd) against auto. Staging as run-call-s49.sh; then .device/main/run-call-s49b.sh
# SECONDS. (It ran on the family v56, which from fd44a59 on is auto's path: h is the path before.)
# 1) variant 56's bitwise and MLP tests and MoeSassTest; 2) MoeLayerBench of auto,h with
# the breakdown (auto alone if a test failed); 3) memcheck on variant 56's bitwise test.
cd "$(dirname "$0")"
export OUT="${OUT:-/tmp/moetune-out}"
LIMIT=${1:-300}
T=moetune.engine.backend.cuda.CudaMoeOpsTest
mkdir -p "$OUT/pre"
OUT="$OUT/pre" SANITIZE=0 \
  SELECT="--select-method=$T#swigluFactorsAreTheUnfusedOpsBitForBit --select-method=$T#moeMlpWithFactorsIsTheMlpWithH --select-class=moetune.engine.backend.cuda.MoeSassTest" \
  timeout -k 5 90 ./run-gpu-tests.sh > "$OUT/pre/run.log" 2>&1
sed 's/\x1b\[[0-9;]*m//g' "$OUT/pre/tests.log" > "$OUT/pre/plain.log"
echo "## precheck (${SECONDS} s)"; grep -E "tests (found|successful|failed|aborted)|✘" "$OUT/pre/plain.log" | head -12
grep -A6 "✘" "$OUT/pre/plain.log" | cut -c1-300 | head -30
if grep -qE "\[ +0 tests failed" "$OUT/pre/plain.log" && grep -qE "\[ +[1-9][0-9]* tests successful" "$OUT/pre/plain.log" \
  && ! grep -q "✘" "$OUT/pre/plain.log"; then K=${KERNELS:-auto,h}; else K=auto; fi
left=$((LIMIT - SECONDS - 40)); bl=$left; [ $bl -gt 240 ] && bl=240
echo "## bench $K (limit ${bl} s)"
BENCH_ARGS="${BENCH_ARGS-16384 4096 14336 8 2 16384 1024 3584 8 2}" MOE_BENCH_KERNELS=$K BENCH_LIMIT=$bl CLOCKS=1 MOE_BENCH_BREAKDOWN=1 ./moe-breakdown.sh > "$OUT/bench.txt" 2>&1
grep -E "MOETUNE|bench exit|^([0-9:.]+ )?\| (16384|scatter2scatter|\*\*|layer|dense)" "$OUT/bench.txt" | cut -c1-200 | tail -50
left=$((LIMIT - SECONDS - 5))
if [ $left -gt 25 ]; then
  . ./java-env.sh
  timeout $left compute-sanitizer --tool memcheck --print-limit 10 $java "${jopts[@]}" -jar $launcher execute -cp "$cp" \
    --select-method=$T#swigluFactorsAreTheUnfusedOpsBitForBit --include-tag=gpu --details=summary --disable-banner 2>&1 \
    | grep -E "ERROR SUMMARY|tests (successful|failed)"
fi
echo "## done (${SECONDS} s)"
