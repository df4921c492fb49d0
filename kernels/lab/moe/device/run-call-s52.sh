#!/usr/bin/env bash
# Session 52's device call: variant 58 (family v58, dH formed in registers from dA and the factors
# in the up product's dX and dW1, kernel58s): git apply kernels/lab/moe/v58-dh-never-written.patch
# (on 33442c9), stage with scripts/device/stage.sh $PWD/.device/main and copy this file into
# .device/main/. From the repository root: .device/main/run-call-s52.sh SECONDS (session 52 ran
# SHORT=1 PRE_LIMIT=75 RESERVE=5 BENCH_ARGS="16384 1024 3584 8 2" ... 165).
# 1) kernel58 against kernel16 over the stored dH bit for bit (and kernel58's dW1 against kernel42), the MLP in V58 against AUTO bit for
# bit, the factors' bitwise test, OpTableGpuTest and MoeSassTest (kernel58's HGMMA, UTMALDG, no
# spills) in one JVM; 2) MoeLayerBench of auto and v58 with the breakdown (1.5B first) if they
# passed; 3) memcheck and racecheck on kernel58's bitwise test.
cd "$(dirname "$0")"
export OUT="${OUT:-/tmp/moetune-out}"
LIMIT=${1:-540}
. ./select-tests.sh
T=moetune.engine.backend.cuda.CudaMoeOpsTest
# SHORT=1 (a call with little device time): kernel58's two bitwise tests and MoeSassTest alone
PRE="--select-method=$T#dxFromDaIsTheProductOverDhBitForBit --select-method=$T#moeMlpHandingDaToTheUpProductIsAutoBitForBit --select-class=moetune.engine.backend.cuda.MoeSassTest"
[ "${SHORT:-0}" = 1 ] || PRE="$PRE --select-method=$T#swigluFactorsAreTheUnfusedOpsBitForBit --select-class=moetune.engine.backend.cuda.OpTableGpuTest"
select_tests pre ${PRE_LIMIT:-150} "$PRE"
# the SASS of kernel58's main loop against kernel16's: HGMMA, and the warpgroup waits and arrives
# ptxas put around them (a wait before each HGMMA would serialise the register-A wgmma)
cuobj=$(command -v cuobjdump || ls /usr/local/cuda*/bin/cuobjdump 2>/dev/null | head -1)
for k in scatter2scatter_ws256_nc_st_fac_kernel58 scatter2scatter_ws256_nc_st_kernel16 group_xty_ws256_tmar_mc_fac_kernel58 group_xty_ws256_tmar_mc_kernel42; do
  "$cuobj" -sass -fun "$k" -arch sm_90a kfatbin/moetune/kernels/moetune.fatbin > "$OUT/$k.sass" 2>&1
  echo "$k: HGMMA $(grep -c HGMMA "$OUT/$k.sass"), WARPGROUP.DEPBAR $(grep -c 'WARPGROUP.DEPBAR' "$OUT/$k.sass"), WARPGROUP.ARRIVE $(grep -c 'WARPGROUP.ARRIVE' "$OUT/$k.sass"), LDSM $(grep -c LDSM "$OUT/$k.sass"), LDL/STL $(grep -cE '\b(LDL|STL)\b' "$OUT/$k.sass")"
done
left=$((LIMIT - SECONDS - ${RESERVE:-90})); bl=$left; [ $bl -gt 260 ] && bl=260
# a failed precheck leaves the time to the sanitizers (the bench would time a wrong kernel)
passed pre && BENCH_ARGS="${BENCH_ARGS-16384 1024 3584 8 2 16384 4096 14336 8 2}" \
  bench_moe "${KERNELS:-auto,v58}" "$bl"
sanitize_tests "$LIMIT" "--select-method=$T#dxFromDaIsTheProductOverDhBitForBit"
echo "## done (${SECONDS} s)"
