#!/usr/bin/env bash
# moe2 helper, the second device call of 2026-12-02 evening (staged into .device/moe2 with AUTO =
# ws256r, the lab binary beside it as moe_lab_ws.xz):
#  1. MoeLayerBench on the fine-grained and 1.5B shapes: ws256 (variant 5 alone) and auto (ws256r:
#     variant 7's dW) in one run with dense cuBLAS (the first call's bench reached only Mixtral)
#  2. the lab: variant 9 (clusters, multicast) without the MEMBAR, checked on awkward shapes, then
#     v5 / v7 / v9 on the three issue shapes next to cuBLAS
#  3. racecheck + memcheck of variant 9 on the awkward shapes
cd "$(dirname "$0")"
. ./preamble.sh
unpack moe_lab_ws
L=/tmp/moe_lab_ws
T bench
limit 100 env MOE_BENCH_V2=0 MOE_BENCH_KERNELS=ws256,auto SANITIZE=0 BENCH=1 \
  BENCH_ARGS="16384 4096 1792 64 16 16384 1024 3584 8 2" SELECT="--select-class=moetune.engine.backend.cuda.MoeSassTest" \
  OUT=/tmp/mo2 ./run-gpu-tests.sh > "$R/bench.txt" 2>&1
echo "bench rc $?"; grep -E "MOETUNE_MOE|^\||tests (successful|failed)" "$R/bench.txt" | head -20
T small9
MOE_LAB_FIRST=9 limit 30 $L 1000 136 264 7 3 517 264 136 5 1 > "$R/lab-small9.txt" 2>&1
rc9=$?; echo "small v9 rc $rc9"; grep -E "FAIL|sample|rror|v9" "$R/lab-small9.txt" | cut -c1-200 | head
T big
MOE_LAB_FIRST=5 MOE_LAB_VARIANTS=579 limit 70 $L 16384 4096 14336 8 2 16384 4096 1792 64 16 16384 1024 3584 8 2 > "$R/lab-big.txt" 2>&1
echo "big rc $?"; grep -E "FAIL|sample|rror|all six v[579]" "$R/lab-big.txt" | cut -c1-200
if [ $rc9 = 0 ]; then
  for tool in racecheck memcheck; do
    T $tool
    MOE_LAB_FIRST=9 MOE_LAB_DENSE=0 MOE_LAB_REPS=1 limit 30 compute-sanitizer --tool $tool \
      --print-limit 10 --error-exitcode 99 $L 1000 136 264 7 3 517 264 136 5 1 > "$R/san9-$tool.txt" 2>&1
    echo "$tool rc $?"; grep -E "SUMMARY|FAIL|Invalid|hazard" "$R/san9-$tool.txt" | head -5
  done
fi
T end
