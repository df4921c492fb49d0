#!/usr/bin/env bash
# Session 51's device call (session 50's two calls in one, for a short device budget): variant 57
# and the factors order (kernels/lab/moe/v57-factors-order-register-loads.patch applied, then
# staged with scripts/device/stage.sh $PWD/.device/main and this file copied into .device/main/).
# From the repository root on the device: .device/main/run-call-s51.sh SECONDS.
# 1) the SwiGLU and factors bitwise tests (AUTO and V57 against the unfused ops), the MLP test (H,
# AUTO, V57), OpTableGpuTest, MoeSassTest and the model's GPU parity tests (AUTO: kernel56 writing
# and reading the factors order) in one JVM; 2) MoeLayerBench of auto and v57 with the breakdown if
# they passed; 3) memcheck and racecheck on the factors' bitwise test (kernels 56 and 57, the
# unfused factors kernels).
cd "$(dirname "$0")"
export OUT="${OUT:-/tmp/moetune-out}"
LIMIT=${1:-540}
. ./select-tests.sh
T=moetune.engine.backend.cuda.CudaMoeOpsTest
select_tests pre 200 "--select-method=$T#swigluEpiloguesAreTheUnfusedOpsBitForBit --select-method=$T#swigluEpiloguesOverFewRowsAreTheUnfusedOpsBitForBit --select-method=$T#swigluFactorsAreTheUnfusedOpsBitForBit --select-method=$T#moeMlpWithFactorsIsTheMlpWithH --select-class=moetune.engine.backend.cuda.OpTableGpuTest --select-class=moetune.engine.backend.cuda.MoeSassTest --select-class=moetune.engine.model.MixtralModelGpuTest"
K=auto
passed pre && K=${KERNELS:-auto,v57}
left=$((LIMIT - SECONDS - 80)); bl=$left; [ $bl -gt 240 ] && bl=240
bench_moe "$K" "$bl"
sanitize_tests "$LIMIT" "--select-method=$T#swigluFactorsAreTheUnfusedOpsBitForBit"
echo "## done (${SECONDS} s)"
