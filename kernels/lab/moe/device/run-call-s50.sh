#!/usr/bin/env bash
# Session 50's device call: variant 57 (family v57: kernel56's dX2 with the factors loaded into the
# threads' registers two 16-column rounds ahead, in the factors order, dH in 16 rounds through four
# buffers a warpgroup) against auto (variant 56, now reading the factors order) in one process.
# First `git apply kernels/lab/moe/v57-factors-order-register-loads.patch` (variant 57 is a patch).
# Staging: scripts/device/stage.sh $PWD/.device/main, cp this file into .device/main/, then on the
# device from the repository root: .device/main/run-call-s50.sh SECONDS (env BENCH_ARGS, KERNELS).
# 1) the SwiGLU bitwise tests, the factors' bitwise test (AUTO and V57 against the unfused ops),
# the MLP test (H, AUTO, V57), OpTableGpuTest (the unfused factors ops against the CPU's) and
# MoeSassTest in one JVM; 2) MoeLayerBench of auto and v57 with the breakdown if they passed;
# 3) memcheck and racecheck on the factors' bitwise test.
cd "$(dirname "$0")"
export OUT="${OUT:-/tmp/moetune-out}"
LIMIT=${1:-540}
. ./select-tests.sh
T=moetune.engine.backend.cuda.CudaMoeOpsTest
select_tests pre 150 "--select-method=$T#swigluEpiloguesAreTheUnfusedOpsBitForBit --select-method=$T#swigluEpiloguesOverFewRowsAreTheUnfusedOpsBitForBit --select-method=$T#swigluFactorsAreTheUnfusedOpsBitForBit --select-method=$T#moeMlpWithFactorsIsTheMlpWithH --select-class=moetune.engine.backend.cuda.OpTableGpuTest --select-class=moetune.engine.backend.cuda.MoeSassTest"
K=auto
passed pre && K=${KERNELS:-auto,v57}
left=$((LIMIT - SECONDS - 80)); bl=$left; [ $bl -gt 320 ] && bl=320
echo "## bench $K (limit ${bl} s)"
BENCH_ARGS="${BENCH_ARGS-16384 4096 14336 8 2 16384 1024 3584 8 2}" MOE_BENCH_KERNELS=$K BENCH_LIMIT=$bl CLOCKS=1 MOE_BENCH_BREAKDOWN=1 ./moe-breakdown.sh > "$OUT/bench.txt" 2>&1
grep -E "MOETUNE|bench exit|^([0-9:.]+ )?\| (16384|scatter2scatter|groupXtY|group |combine|\*\*|layer|dense)" "$OUT/bench.txt" | cut -c1-200 | tail -80
sanitize_tests "$LIMIT" "--select-method=$T#swigluFactorsAreTheUnfusedOpsBitForBit"
echo "## done (${SECONDS} s)"
