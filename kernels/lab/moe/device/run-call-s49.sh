#!/usr/bin/env bash
# Session 49's device call: families v54 (variant 39: the first product's six store rounds issued
# by the producer warpgroup's TMA thread), v55 (variant 55: kernels 15 and 25 with h, a and dH
# under the L2 evict_first policy) and v56 (variant 56: SwiGLU's backward factors saved in h's
# place; dX2 over dy grouped with its gates by TMA, dH = [dA p | dA q]) against auto, one process.
# It ran on 3392f35, where family v56 named variant 56; since then variant 56 is auto's path and
# family h the path before it (run it with KERNELS="h v54"; the model test below now takes auto).
# Staging: scripts/device/stage.sh $PWD/.device/main, cp this file into .device/main/, then on the
# device from the repository root: .device/main/run-call-s49.sh SECONDS (env BENCH_ARGS, KERNELS).
# 1) the SwiGLU bitwise tests (V54, V55 beside AUTO, V16, V11, V10), variant 56's bitwise and MLP
# tests, OpTableGpuTest and MoeSassTest in a JVM of their own; then MixtralModelGpuTest with
# MOETUNE_MOE_KERNEL=v56 if variant 56 passed; 2) MoeLayerBench of auto and every family no failing
# test names (v56 first), with the breakdown; 3) memcheck and racecheck on variant 56's test.
cd "$(dirname "$0")"
export OUT="${OUT:-/tmp/moetune-out}"
LIMIT=${1:-540}
T=moetune.engine.backend.cuda.CudaMoeOpsTest
mkdir -p "$OUT/pre"
OUT="$OUT/pre" SANITIZE=0 \
  SELECT="--select-method=$T#swigluEpiloguesAreTheUnfusedOpsBitForBit --select-method=$T#swigluEpiloguesOverFewRowsAreTheUnfusedOpsBitForBit --select-method=$T#swigluEpiloguesOverLongerProductsAreTheUnfusedOpsBitForBit --select-method=$T#swigluFactorsAreTheUnfusedOpsBitForBit --select-method=$T#moeMlpWithFactorsIsTheMlpWithH --select-class=moetune.engine.backend.cuda.OpTableGpuTest --select-class=moetune.engine.backend.cuda.MoeSassTest" \
  timeout -k 5 150 ./run-gpu-tests.sh > "$OUT/pre/run.log" 2>&1
sed 's/\x1b\[[0-9;]*m//g' "$OUT/pre/tests.log" > "$OUT/pre/plain.log"
echo "## precheck (${SECONDS} s)"; grep -E "tests (found|successful|failed|aborted)|✘" "$OUT/pre/plain.log" | head -20
grep -A6 "✘" "$OUT/pre/plain.log" | cut -c1-300 | head -40
K=auto
for fam in ${KERNELS:-v56 v54 v55}; do
  if grep -qE "\[ +[1-9][0-9]* tests successful" "$OUT/pre/plain.log" \
    && ! grep -A8 "✘" "$OUT/pre/plain.log" | grep -qiE "$fam|${fam/v56/factors}"; then K="$K,$fam"; fi
done
case "$K" in *v56*)  # the model's GPU parity tests with variant 56's factors path
  mkdir -p "$OUT/model"
  OUT="$OUT/model" SANITIZE=0 MOETUNE_MOE_KERNEL=auto SELECT="--select-class=moetune.engine.model.MixtralModelGpuTest" \
    timeout -k 5 ${MODEL_LIMIT:-90} ./run-gpu-tests.sh > "$OUT/model/run.log" 2>&1
  sed 's/\x1b\[[0-9;]*m//g' "$OUT/model/tests.log" > "$OUT/model/plain.log"
  echo "## MixtralModelGpuTest with v56 (${SECONDS} s)"
  grep -E "tests (found|successful|failed|aborted)|✘" "$OUT/model/plain.log" | head -12
  grep -A6 "✘" "$OUT/model/plain.log" | cut -c1-300 | head -20;;
esac
left=$((LIMIT - SECONDS - 70)); bl=$left; [ $bl -gt 330 ] && bl=330
echo "## bench $K (limit ${bl} s)"
BENCH_ARGS="${BENCH_ARGS-16384 4096 14336 8 2 16384 1024 3584 8 2}" MOE_BENCH_KERNELS=$K BENCH_LIMIT=$bl CLOCKS=1 MOE_BENCH_BREAKDOWN=1 ./moe-breakdown.sh > "$OUT/bench.txt" 2>&1
grep -E "MOETUNE|bench exit|^([0-9:.]+ )?\| (16384|scatter2scatter|groupXtY|group |combine|\*\*|layer|dense)" "$OUT/bench.txt" | cut -c1-200 | tail -80
. ./java-env.sh
for tool in memcheck racecheck; do
  left=$((LIMIT - SECONDS - 5))
  [ $left -gt 25 ] || break
  echo "## $tool (${SECONDS} s)"
  timeout $left compute-sanitizer --tool $tool --print-limit 10 $java "${jopts[@]}" -jar $launcher execute -cp "$cp" \
    --select-method=$T#swigluFactorsAreTheUnfusedOpsBitForBit --include-tag=gpu --details=summary --disable-banner 2>&1 \
    | grep -E "ERROR SUMMARY|RACECHECK SUMMARY|tests (successful|failed)"
done
echo "## done (${SECONDS} s)"
