#!/usr/bin/env bash
# moe helper, device call 2: MoE op tests + SASS test, layer bench with the per-product choice
# (auto), then compute-sanitizer memcheck and racecheck on the lab binary over the two awkward
# shapes (every product of variants 1-4: partial tiles in rows, columns and k).
cd "$(dirname "$0")"
. ./preamble.sh
date +%T
MOE_BENCH_V2=0 BENCH=1 SANITIZE=0 \
  SELECT="--select-class=moetune.engine.backend.cuda.CudaMoeOpsTest --select-class=moetune.engine.backend.cuda.MoeSassTest" \
  OUT=/tmp/moetune-out timeout 120 ./run-gpu-tests.sh > "$R/run.txt" 2>&1
echo "tests rc $?"; date +%T
sed 's/\x1b\[[0-9;]*m//g' "$R/run.txt" | grep -E "bf16Products|\[[0-9]\] (V2|N256|N128)|Sass|tests (successful|failed)|exit|MOETUNE_MOE|^\| " | head -30
cp /tmp/moetune-out/bench.log "$R/" 2>/dev/null
unpack moe_lab_wg
for tool in memcheck racecheck; do
  echo "== $tool"; date +%T
  MOE_LAB_REPS=1 timeout 50 compute-sanitizer --tool $tool --print-limit 20 --error-exitcode 99 \
    /tmp/moe_lab_wg 1000 136 264 7 3 517 264 136 5 1 > "$R/lab-$tool.txt" 2>&1
  echo "$tool rc $?"; grep -E "SUMMARY|FAIL|Invalid|hazard" "$R/lab-$tool.txt" | head -8
done
date +%T
