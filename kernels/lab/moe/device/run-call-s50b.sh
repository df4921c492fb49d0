#!/usr/bin/env bash
# Session 50's second device call: 1) the engine's whole GPU suite (--select-package=moetune.engine)
# on the build with the factors order (AUTO: kernel56 reading and writing it); 2) the model's GPU
# parity tests with MOETUNE_MOE_KERNEL=v57 (variant 57's dX2 in the whole model); 3) memcheck and
# racecheck on the factors' bitwise test (kernels 56 and 57, the unfused factors kernels).
# With the patch applied and staged as run-call-s50.sh; then .device/main/run-call-s50b.sh SECONDS.
cd "$(dirname "$0")"
export OUT="${OUT:-/tmp/moetune-out}"
LIMIT=${1:-540}
. ./select-tests.sh
select_tests suite "${SUITE_LIMIT:-240}" "--select-package=moetune.engine"
select_tests model "${MODEL_LIMIT:-90}" "--select-class=moetune.engine.model.MixtralModelGpuTest" \
  MOETUNE_MOE_KERNEL=v57
sanitize_tests "$LIMIT" "--select-method=moetune.engine.backend.cuda.CudaMoeOpsTest#swigluFactorsAreTheUnfusedOpsBitForBit"
echo "## done (${SECONDS} s)"
