#!/usr/bin/env bash
# Issue 9, second call of 2026-12-02 (after run-attn3.sh showed the warp-pair backward v5-v7
# slower than v1 at hd 128), from the staged folder (scripts/device/stage.sh + ./harness +
# bench_sdpa.py). Timing alone on the GPU: `./harness diag 2048 4096 8192` (hd 128 backward v1,
# v1 with dQ by plain stores (11), v1 without the dQ product (12), v5, v8 = v1 with dQ one tile
# late) and SDPA; ncu --clock-control none on the backward kernels at T 4096 (v1, v5, v8 at hd 128;
# v4 at hd 64); then side by side: harness checks, CudaAttentionTest + MixtralAttentionPathsGpuTest
# with MOETUNE_FA2_BWD=v8, compute-sanitizer memcheck/racecheck on `./harness race 8`.
# Logs and the ncu reports come back in logs.tgz.
set -uo pipefail
cd "$(dirname "$0")"
RES="${OUT:-/tmp/attn-out}"
OUT=/tmp/attn-logs
mkdir -p "$OUT" "$RES"
JAVA_ENV_UNPACK=later . ./java-env.sh  # java, cp, launcher, fixtures, jopts (stage.sh's)
. ./lab-env.sh  # el, ratio_table
(java_unpack 2>/dev/null) &
tarpid=$!
el "harness diag"
timeout 40 ./harness diag 2048 4096 8192 > "$OUT/diag.log" 2>&1; echo "diag rc $?"
el "sdpa"
PYTHONUNBUFFERED=1 timeout 50 python3 bench_sdpa.py --seq 2048,4096,8192 --head-dim 128 \
  --backend default --reps 20 > "$OUT/sdpa.log" 2>&1; echo "sdpa rc $?"
el "ncu"
ncu=$(command -v ncu || ls /usr/local/cuda*/bin/ncu 2>/dev/null | head -1)
secs="--section SpeedOfLight --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis_Tables --section WarpStateStats --section InstructionStats --section LaunchStats --section Occupancy"
timeout 90 $ncu --clock-control none -k regex:attention_fa2_backward $secs -f -o "$OUT/bwd128" \
  ./harness prof 128 4096 1 5 8 > "$OUT/ncu128.log" 2>&1; echo "ncu hd128 rc $?"
timeout 40 $ncu --clock-control none -k regex:attention_fa2_backward $secs -f -o "$OUT/bwd64" \
  ./harness prof 64 4096 4 > "$OUT/ncu64.log" 2>&1; echo "ncu hd64 rc $?"
wait $tarpid
el "checks, GPU tests (v8), sanitizers (side by side)"
[ -f jre.tar.xz ] && (MOETUNE_FA2_BWD=v8 timeout 100 $java --enable-native-access=ALL-UNNAMED -Xmx6g \
  -Dmoetune.fixtures="$fixtures" -jar $launcher execute -cp "$cp" \
  --select-class=moetune.engine.backend.cuda.CudaAttentionTest \
  --select-class=moetune.engine.model.MixtralAttentionPathsGpuTest \
  --include-tag=gpu --details=tree --disable-banner > "$OUT/tests-v8.log" 2>&1
  echo "tests MOETUNE_FA2_BWD=v8 rc $?" >> "$OUT/rc.txt") &
(timeout 60 ./harness check > "$OUT/harness-check.log" 2>&1; echo "harness check rc $?" >> "$OUT/rc.txt") &
for tool in memcheck racecheck; do
  (timeout 100 compute-sanitizer --tool $tool --print-limit 10 ./harness race 8 \
    > "$OUT/$tool.log" 2>&1; echo "$tool rc $?" >> "$OUT/rc.txt") &
done
for r in bwd128 bwd64; do
  $ncu -i "$OUT/$r.ncu-rep" --page details > "$OUT/$r-details.txt" 2>&1
  $ncu -i "$OUT/$r.ncu-rep" --page raw > "$OUT/$r-raw.txt" 2>&1
done
wait
el "done"
tar -C /tmp -czf "$RES/logs.tgz" attn-logs
cat "$OUT/rc.txt"
grep -hE "ERROR SUMMARY|RACECHECK SUMMARY|race cases" "$OUT/memcheck.log" "$OUT/racecheck.log"
grep -E "FAIL|correctness" "$OUT/harness-check.log"
grep -E "^f2 b8" "$OUT/harness-check.log" | sed 's/  */ /g'
echo "tests v8: $(sed 's/\x1b\[[0-9;]*m//g' "$OUT/tests-v8.log" | grep -E 'tests (successful|failed)' | tr -s ' ' | tr '\n' ' ')"
sed 's/\x1b\[[0-9;]*m//g' "$OUT/tests-v8.log" | grep -E "✘" | head -5
for r in bwd128 bwd64; do
  grep -E "attention_fa2_backward|^ *Duration|Compute \(SM\) Throughput|Issue Slots Busy|Warp Cycles Per Issued Instruction|Executed Ipc Active" "$OUT/$r-details.txt" | sed 's/  */ /g' | cut -c1-90
done
ratio_table "$OUT/diag.log" "$OUT/sdpa.log"
