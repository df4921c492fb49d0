#!/usr/bin/env bash
# Issue 9, hd 128 warp-pair backward variants v5-v7 (attention_fa2.cu bwd_pair): one device call
# from the staged folder (scripts/device/stage.sh, plus ./harness built on the host and
# bench_sdpa.py). Timing first, alone on the GPU: the harness (forward v2 with backward v1, v4-v7)
# then SDPA (default = cuDNN); then, side by side, the harness checks, CudaAttentionTest +
# MixtralAttentionPathsGpuTest with MOETUNE_FA2_BWD=v5, v6, v7, and compute-sanitizer memcheck and
# racecheck on `./harness race 5 6 7`. Logs under $OUT; the table with the ratios is printed last.
set -uo pipefail
cd "$(dirname "$0")"
RES="${OUT:-/tmp/attn-out}"  # gets logs.tgz (the device tool brings back at most 8 files)
OUT=/tmp/attn-logs
mkdir -p "$OUT" "$RES"
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader | tee "$OUT/device.txt"
JAVA_ENV_UNPACK=later . ./java-env.sh  # java, cp, launcher, fixtures, jopts (stage.sh's)
. ./lab-env.sh  # el, ratio_table
(java_unpack 2>/dev/null) &
tarpid=$!
el "harness time"
timeout 40 ./harness time 2048 4096 8192 > "$OUT/harness-time.log" 2>&1; echo "harness time rc $?"
el "sdpa"
PYTHONUNBUFFERED=1 timeout 50 python3 bench_sdpa.py --seq 2048,4096,8192 --head-dim 128,64 \
  --backend default --reps 20 > "$OUT/sdpa.log" 2>&1; echo "sdpa rc $?"
wait $tarpid
el "checks, GPU tests, sanitizers (side by side)"
jt() { # variant
  MOETUNE_FA2_BWD=$1 timeout 100 $java --enable-native-access=ALL-UNNAMED -Xmx6g \
    -Dmoetune.fixtures="$fixtures" -jar $launcher execute -cp "$cp" \
    --select-class=moetune.engine.backend.cuda.CudaAttentionTest \
    --select-class=moetune.engine.model.MixtralAttentionPathsGpuTest \
    --include-tag=gpu --details=tree --disable-banner > "$OUT/tests-$1.log" 2>&1
  echo "tests MOETUNE_FA2_BWD=$1 rc $?" >> "$OUT/rc.txt"
}
(timeout 60 ./harness check > "$OUT/harness-check.log" 2>&1; echo "harness check rc $?" >> "$OUT/rc.txt") &
for v in v5 v6 v7; do jt $v & done
if command -v compute-sanitizer >/dev/null; then
  for tool in memcheck racecheck; do
    (timeout 100 compute-sanitizer --tool $tool --print-limit 10 ./harness race 5 6 7 \
      > "$OUT/$tool.log" 2>&1; echo "$tool rc $?" >> "$OUT/rc.txt") &
  done
fi
if command -v cuobjdump >/dev/null; then
  for v in v1 v5 v6 v7; do
    f=attention_fa2_backward_${v}_hd128; [ $v = v1 ] && f=attention_fa2_backward_hd128
    cuobjdump -sass -fun $f ./harness > /tmp/sass-$v.txt 2>&1
    echo "sass $f: HMMA $(grep -c HMMA /tmp/sass-$v.txt), LDSM $(grep -c LDSM /tmp/sass-$v.txt), LDL/STL $(grep -cE 'LDL|STL' /tmp/sass-$v.txt), RED $(grep -cE 'RED|ATOM' /tmp/sass-$v.txt)" >> "$OUT/rc.txt"
  done
fi
wait
el "done"
cat "$OUT/rc.txt"
grep -hE "ERROR SUMMARY|RACECHECK SUMMARY|race cases" "$OUT/memcheck.log" "$OUT/racecheck.log"
grep -E "FAIL|correctness" "$OUT/harness-check.log"
awk '/ ok$| FAIL$/ {for(i=1;i<=NF;i++) if ($i ~ /^(out|lse|dq|dk|dv)$/) {v=$(i+1)+0; k=$1" "$2" "$i; if (v>m[k]) m[k]=v}} END {for (k in m) printf "max %s %.1e\n", k, m[k]}' "$OUT/harness-check.log" | sort | grep -E " b[5-7] " | paste - - - - -
for v in v5 v6 v7; do
  echo "tests $v: $(sed 's/\x1b\[[0-9;]*m//g' "$OUT/tests-$v.log" | grep -E 'tests (successful|failed)' | tr -s ' ' | tr '\n' ' ')"
  sed 's/\x1b\[[0-9;]*m//g' "$OUT/tests-$v.log" | grep -E "✘" | head -5
done
ratio_table "$OUT/harness-time.log" "$OUT/sdpa.log"
tar -C /tmp -czf "$RES/logs.tgz" attn-logs
