#!/usr/bin/env bash
# Session 54's device call: variants 59 (start groups), 60 (dy grouped with its gates' gradient in
# one pass) and 61 (dW2 on a second stream beside dX2), all in the build and off by default: stage
# with scripts/device/stage.sh $PWD/.device/main, copy this file into .device/main/, then from the
# repository root: .device/main/run-call-s54.sh SECONDS.
# 1) their bitwise tests (each setting against none, the MLP's five outputs bit for bit; variant
# 60's op against the two ops and the CPU) and the factors' test; 2) if they passed, MoeLayerBench
# of auto with each of SETTINGS (MOE_BENCH_SETTINGS) with the breakdown, on 1.5B and Mixtral
# (BENCH_ARGS), in one process; 3) in the seconds left (RESERVE, e.g. 150), compute-sanitizer
# memcheck and racecheck on the new ops' tests.
cd "$(dirname "$0")"
export OUT="${OUT:-/tmp/moetune-out}"
LIMIT=${1:-540}
. ./select-tests.sh
T=moetune.engine.backend.cuda.CudaMoeOpsTest
NEW="--select-method=$T#groupGatesInOnePassAreTheTwoOpsBitForBit --select-method=$T#groupGatesInOnePassLeaveTheMlpBitForBit --select-method=$T#dwBesideDxLeavesTheMlpBitForBit"
select_tests pre "${PRE_LIMIT:-120}" \
  "$NEW --select-method=$T#startGroupsLeaveTheMlpBitForBit --select-method=$T#swigluFactorsAreTheUnfusedOpsBitForBit"
left=$((LIMIT - SECONDS - ${RESERVE:-10}))
# a failed precheck skips the bench (it would time kernels that compute something else)
passed pre && MOE_BENCH_SETTINGS="${SETTINGS:-base,groupgates=fused+beside=52/66,stagger=2:2,groupgates=fused+beside=62/67,stagger=2:1,beside=52/66:v14}" \
  BENCH_ARGS="${BENCH_ARGS-16384 1024 3584 8 2 16384 4096 14336 8 2}" bench_moe "${KERNELS:-auto}" "$left"
# the new kernel first (the beside test runs the shipped kernels, sanitized before, on two streams)
sanitize_tests "$LIMIT" "--select-method=$T#groupGatesInOnePassAreTheTwoOpsBitForBit --select-method=$T#dwBesideDxLeavesTheMlpBitForBit"
echo "## done (${SECONDS} s)"
