#!/usr/bin/env bash
# The next call for variant 58 (lab README, "Session 52"): git apply
# kernels/lab/moe/v58-dh-never-written.patch, stage with scripts/device/stage.sh $PWD/.device/main,
# copy this file into .device/main/, then from the repository root: .device/main/run-call-s53.sh
# SECONDS. 1) memcheck and racecheck on kernel58's bitwise test with the hazards printed (session 52
# kept only racecheck's summary: 4 errors, 1 warning); 2) ncu with the memory sections on 1.5B's
# dX1, AUTO's kernel16 against v58's kernel58, to check the shared-memory byte model (about 128
# KiB a k step against 160).
cd "$(dirname "$0")"
export OUT="${OUT:-/tmp/moetune-out}"
LIMIT=${1:-400}
. ./select-tests.sh
T=moetune.engine.backend.cuda.CudaMoeOpsTest
sanitize_tests $((LIMIT / 2)) "--select-method=$T#dxFromDaIsTheProductOverDhBitForBit"
for fam in auto v58; do
  k=nc_st_kernel16; runs=2  # auto's dX1 is its only nc_st_kernel16; v58's dX1 is kernel58
  [ $fam = v58 ] && k=nc_st_fac_kernel58 && runs=1
  left=$(( (LIMIT - SECONDS - 10) / runs )); [ $left -gt 20 ] || break
  echo "## ncu $fam ($k, ${SECONDS} s)"
  OUT="$OUT/ncu-$fam" SHAPES="16384 1024 3584 8 2" FAMILY=$fam KREGEX=$k MEM=1 LIMIT=$left ./ncu-source.sh
done
echo "## done (${SECONDS} s)"
