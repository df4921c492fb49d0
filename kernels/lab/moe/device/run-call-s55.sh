#!/usr/bin/env bash
# Session 55's device call: variants 62, 63 and 65 (kernel56's dX2 on ping-pong warpgroups, no
# clusters) and 64 and 66 (kernel56's first product the same way), with session 54's variants
# 59-61; all in the build and off by default. Stage with scripts/device/stage.sh
# $PWD/.device/main, copy this file into .device/main/, then from the repository root:
# RESERVE=150 .device/main/run-call-s55.sh SECONDS.
# 1) the ping-pong tests (dH, the factors and a against kernel56 bit for bit; the MLP), each in its
# own process; 2) session 54's bitwise tests and the factors' test; 3) MoeLayerBench of auto on
# 1.5B and Mixtral (BENCH_ARGS) with the breakdown, in one process, over base and the settings
# whose tests passed (pingpong=v62, v63, v65, v64, v66, v63/v64, v65/v66 first, then three of
# 59-61's; SETTINGS replaces the list); 4) in the seconds left (RESERVE), memcheck and racecheck
# on the ping-pong kernels' tests first, then on variant 60's op and variant 61's pairs.
cd "$(dirname "$0")"
export OUT="${OUT:-/tmp/moetune-out}"
LIMIT=${1:-560}
. ./select-tests.sh
T=moetune.engine.backend.cuda.CudaMoeOpsTest
# (apart, so that a broken variant drops its own settings only)
select_tests ppdx "${PP_LIMIT:-70}" "--select-method=$T#pingPongDx2IsKernel56BitForBit"
select_tests ppfw "${PP_LIMIT:-70}" "--select-method=$T#pingPongFwd1IsKernel56BitForBit"
select_tests ppmlp "${PP_LIMIT:-70}" "--select-method=$T#pingPongLeavesTheMlpBitForBit"
select_tests pre "${PRE_LIMIT:-120}" \
  "--select-method=$T#groupGatesInOnePassAreTheTwoOpsBitForBit --select-method=$T#groupGatesInOnePassLeaveTheMlpBitForBit --select-method=$T#dwBesideDxLeavesTheMlpBitForBit --select-method=$T#startGroupsLeaveTheMlpBitForBit --select-method=$T#swigluFactorsAreTheUnfusedOpsBitForBit"
# a setting is timed only if its tests passed (else it would time kernels that compute something
# else); base always, the ping-pong settings right after it
settings=base
passed ppdx && settings="$settings,pingpong=v62,pingpong=v63,pingpong=v65"
passed ppfw && settings="$settings,pingpong=v64,pingpong=v66"
passed ppdx && passed ppfw && passed ppmlp && settings="$settings,pingpong=v63/v64,pingpong=v65/v66"
passed pre && settings="$settings,groupgates=fused+beside=52/66,groupgates=fused+beside=62/67,stagger=2:1"
left=$((LIMIT - SECONDS - ${RESERVE:-10}))
[ "$settings" != base ] && MOE_BENCH_SETTINGS="${SETTINGS:-$settings}" \
  BENCH_ARGS="${BENCH_ARGS-16384 1024 3584 8 2 16384 4096 14336 8 2}" bench_moe "${KERNELS:-auto}" "$left"
sanitize_tests "$LIMIT" "--select-method=$T#pingPongDx2IsKernel56BitForBit --select-method=$T#pingPongFwd1IsKernel56BitForBit --select-method=$T#groupGatesInOnePassAreTheTwoOpsBitForBit --select-method=$T#dwBesideDxLeavesTheMlpBitForBit"
echo "## done (${SECONDS} s)"
