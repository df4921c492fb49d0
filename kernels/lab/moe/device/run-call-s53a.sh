#!/usr/bin/env bash
# Session 53's device call: variant 59, the start groups (MOETUNE_MOE_STAGGER, off by default) of
# the warp-specialised products (all six of the layer), on the build itself (no patch): stage with
# scripts/device/stage.sh $PWD/.device/main, copy this file into .device/main/, then from the
# repository root: .device/main/run-call-s53a.sh SECONDS.
# 1) the start groups leave the expert MLP's five outputs bit for bit (two and four groups), and
# the factors' bitwise test; 2) if they passed, MoeLayerBench of auto with each of SETTINGS (default stagger=off,stagger=2:1,stagger=2:2,stagger=4:2)
# with the breakdown, on 1.5B and Mixtral (BENCH_ARGS), in one process; 3) where RESERVE seconds
# were kept for it (e.g. RESERVE=160), ncu (--clock-control none, memory sections) of one launch
# of 1.5B's dX2 (kernel56) without start groups and with NCU_STAGGER (default 2:2): its duration
# and DRAM throughput, to tell whether the epilogues stop queueing on DRAM.
cd "$(dirname "$0")"
export OUT="${OUT:-/tmp/moetune-out}"
LIMIT=${1:-540}
. ./select-tests.sh
T=moetune.engine.backend.cuda.CudaMoeOpsTest
select_tests pre "${PRE_LIMIT:-100}" \
  "--select-method=$T#startGroupsLeaveTheMlpBitForBit --select-method=$T#swigluFactorsAreTheUnfusedOpsBitForBit"
left=$((LIMIT - SECONDS - ${RESERVE:-10}))
# a failed precheck skips the bench (it would time kernels that compute something else)
passed pre && MOE_BENCH_SETTINGS="${SETTINGS:-stagger=off,stagger=2:1,stagger=2:2,stagger=4:2}" \
  BENCH_ARGS="${BENCH_ARGS-16384 1024 3584 8 2 16384 4096 14336 8 2}" bench_moe "${KERNELS:-auto}" "$left"
n=2  # runs left: the first takes half of the time kept
for st in off "${NCU_STAGGER:-2:2}"; do
  left=$(( (LIMIT - SECONDS - 5) / n )); n=1
  [ $left -gt 40 ] || break
  echo "## ncu dX2 (kernel56) MOETUNE_MOE_STAGGER=$st (${SECONDS} s)"
  MOETUNE_MOE_STAGGER=$st OUT="$OUT/ncu-${st//:/-}" SHAPES="16384 1024 3584 8 2" KREGEX=glubwd_fac_kernel56 \
    MEM=1 LIMIT=$left ./ncu-source.sh 2>&1 | grep -E "shape|Duration|DRAM Throughput|Compute \(SM\)|Mem Busy|Max Bandwidth" | head -12
done
echo "## done (${SECONDS} s)"
