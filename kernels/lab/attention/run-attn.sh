#!/usr/bin/env bash
# Issue 9 backward variants: lab harness (checks, timing), SDPA in the same call, GPU tests on the
# default and the candidate variants, racecheck of the harness' small cases. Logs under $OUT.
set -uo pipefail
cd "$(dirname "$0")"
OUT="${OUT:-/tmp/attn-out}"
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader | tee "$OUT/device.txt"
JAVA_ENV_UNPACK=later . ./java-env.sh  # java, cp, launcher, fixtures, jopts (stage.sh's)
. ./lab-env.sh  # el
java_unpack &
tarpid=$!
el "harness check"
timeout 40 ./harness check > "$OUT/harness-check.log" 2>&1; echo "harness check rc $?"
grep -E "FAIL|correctness" "$OUT/harness-check.log"
awk '/ ok$| FAIL$/ {for(i=1;i<=NF;i++) if ($i ~ /^(out|lse|dq|dk|dv)$/) {v=$(i+1)+0; if (v>m[$i]) m[$i]=v}} END {for (k in m) printf "max %s err %.1e\n", k, m[k]}' "$OUT/harness-check.log"
el "harness time"
timeout 45 ./harness time 2048 4096 8192 > "$OUT/harness-time.log" 2>&1; echo "harness time rc $?"
cat "$OUT/harness-time.log"
el "sdpa"
timeout 40 python3 bench_sdpa.py --seq 2048,4096,8192 --head-dim 128,64 --backend default --reps 20 > "$OUT/sdpa.log" 2>&1; echo "sdpa rc $?"
grep -v RESULT "$OUT/sdpa.log" | tail -9
wait $tarpid
el "java tests (default variants)"
jt() { # name, timeout, selectors...
  local name=$1 to=$2; shift 2
  timeout $to $java "${jopts[@]}" -jar $launcher execute -cp "$cp" "$@" --include-tag=gpu \
    --details=tree --disable-banner > "$OUT/$name.log" 2>&1
  echo "$name rc $?: $(grep -E 'tests (successful|failed)' "$OUT/$name.log" | tr -s ' ' | tr '\n' ' ')"
  grep -E "✘" "$OUT/$name.log" | head -8
}
jt tests-default 60 --select-class=moetune.engine.backend.cuda.CudaAttentionTest \
  --select-class=moetune.engine.model.MixtralAttentionPathsGpuTest \
  --select-class=moetune.engine.train.MixtralTrainerGpuTest \
  --select-class=moetune.engine.backend.cuda.CudaLayerOpsTest
grep -E "vs cpu|own vs scalar|attention:|calls on the tensor-core" "$OUT/tests-default.log" | sed 's/^[│├└─ ]*//' | head -16
for v in v2 v4; do
  el "CudaAttentionTest MOETUNE_FA2_BWD=$v"
  MOETUNE_FA2_BWD=$v jt tests-$v 25 --select-class=moetune.engine.backend.cuda.CudaAttentionTest
done
el "racecheck (harness race cases)"
if command -v compute-sanitizer >/dev/null; then
  timeout 35 compute-sanitizer --tool racecheck --print-limit 10 ./harness race > "$OUT/racecheck.log" 2>&1
  echo "racecheck rc $?"; grep -E "RACECHECK SUMMARY|race cases|FAIL" "$OUT/racecheck.log" | head -5
fi
el "done"
