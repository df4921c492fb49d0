#!/usr/bin/env bash
# Runs on the GPU host from the staged folder (see stage.sh): every @Tag("gpu") test, then the
# op tests again under compute-sanitizer memcheck and racecheck. Logs and JUnit XML go to $OUT.
set -uo pipefail
cd "$(dirname "$0")"
OUT="${OUT:-/tmp/moetune-out}"
mkdir -p "$OUT"
. ./java-env.sh  # java, cp, launcher, fixtures, jopts
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/device.txt"
find / -xdev -name 'libcublas.so.1[23]*' 2>/dev/null | head -5 | tee -a "$OUT/device.txt"
# NCCL for the NCCL tests (one GPU: NcclOverlapGpuTest): the system's, else PyTorch's wheel's
if [ -z "${MOETUNE_NCCL:-}" ]; then
  lib=$(find / -xdev -name 'libnccl.so.2' 2>/dev/null | head -1)
  [ -n "$lib" ] && export MOETUNE_NCCL="$lib"
fi
echo "NCCL: ${MOETUNE_NCCL:-not found}" | tee -a "$OUT/device.txt"
# SEED=N replays a run's random inputs (the tests print the seed they used)
[ -n "${SEED:-}" ] && jopts+=(-Dmoetune.seed="$SEED")
select_tests=${SELECT:-"--select-package=moetune.engine.backend.cuda --select-class=moetune.engine.model.MixtralModelGpuTest"}
t0=$(date +%s)
$java "${jopts[@]}" -jar $launcher execute -cp "$cp" $select_tests --include-tag=gpu \
  --details=tree --disable-banner --reports-dir="$OUT/junit" 2>&1 | tee "$OUT/tests.log" | tail -120
rc_tests=${PIPESTATUS[0]}
t1=$(date +%s)
rc_mem=skipped; rc_race=skipped
if [ "${SANITIZE:-1}" = 1 ] && command -v compute-sanitizer >/dev/null; then
  for tool in ${SANITIZE_TOOLS:-memcheck racecheck}; do
    timeout ${SANITIZE_TIMEOUT:-200} compute-sanitizer --tool $tool --target-processes all --print-limit 20 --error-exitcode 99 \
      $java "${jopts[@]}" -jar $launcher execute -cp "$cp" ${SANITIZE_SELECT:-"--select-package=moetune.engine.backend.cuda"} \
      --include-tag=gpu --details=summary --disable-banner > "$OUT/sanitizer-$tool.log" 2>&1
    rc=$?
    [ $tool = memcheck ] && rc_mem=$rc || rc_race=$rc
    grep -E "ERROR SUMMARY|RACECHECK SUMMARY|tests (successful|failed)" "$OUT/sanitizer-$tool.log" | head -5
  done
fi
t2=$(date +%s)
if [ "${BENCH:-0}" = 1 ]; then
  timeout ${BENCH_TIMEOUT:-240} $java "${jopts[@]}" -Xmx16g -cp "$cp" moetune.engine.backend.cuda.MoeLayerBench \
    ${BENCH_ARGS:-} 2>&1 | tee "$OUT/bench.log"
fi
echo "=== results ==="
grep -E "tests (found|successful|failed|skipped)" "$OUT/tests.log"
grep -E "✘" "$OUT/tests.log" | head -40
echo "junit exit $rc_tests ($((t1 - t0)) s); memcheck exit $rc_mem, racecheck exit $rc_race ($((t2 - t1)) s)"
