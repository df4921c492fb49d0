#!/usr/bin/env bash
# Session 50's second device call: 1) the engine's whole GPU suite (--select-package=moetune.engine)
# on the build with the factors order (AUTO: kernel56 reading and writing it); 2) the model's GPU
# parity tests with MOETUNE_MOE_KERNEL=v57 (variant 57's dX2 in the whole model); 3) memcheck and
# racecheck on the factors' bitwise test (kernels 56 and 57, the unfused factors kernels).
# With the patch applied and staged as run-call-s50.sh; then .device/main/run-call-s50b.sh SECONDS.
cd "$(dirname "$0")"
export OUT="${OUT:-/tmp/moetune-out}"
LIMIT=${1:-540}
T=moetune.engine.backend.cuda.CudaMoeOpsTest
mkdir -p "$OUT/suite" "$OUT/model"
OUT="$OUT/suite" SANITIZE=0 SELECT="--select-package=moetune.engine" \
  timeout -k 5 ${SUITE_LIMIT:-240} ./run-gpu-tests.sh > "$OUT/suite/run.log" 2>&1
sed 's/\x1b\[[0-9;]*m//g' "$OUT/suite/tests.log" > "$OUT/suite/plain.log"
echo "## suite (${SECONDS} s)"; grep -E "tests (found|successful|failed|aborted|skipped)|✘" "$OUT/suite/plain.log" | head -20
grep -A6 "✘" "$OUT/suite/plain.log" | cut -c1-300 | head -40
OUT="$OUT/model" SANITIZE=0 MOETUNE_MOE_KERNEL=v57 SELECT="--select-class=moetune.engine.model.MixtralModelGpuTest" \
  timeout -k 5 ${MODEL_LIMIT:-90} ./run-gpu-tests.sh > "$OUT/model/run.log" 2>&1
sed 's/\x1b\[[0-9;]*m//g' "$OUT/model/tests.log" > "$OUT/model/plain.log"
echo "## MixtralModelGpuTest with v57 (${SECONDS} s)"
grep -E "tests (found|successful|failed|aborted)|✘" "$OUT/model/plain.log" | head -12
grep -A6 "✘" "$OUT/model/plain.log" | cut -c1-300 | head -20
. ./java-env.sh
for tool in memcheck racecheck; do
  left=$((LIMIT - SECONDS - 5))
  [ $left -gt 25 ] || break
  echo "## $tool (${SECONDS} s)"
  timeout $left compute-sanitizer --tool $tool --print-limit 10 $java "${jopts[@]}" -jar $launcher execute -cp "$cp" \
    --select-method=$T#swigluFactorsAreTheUnfusedOpsBitForBit --include-tag=gpu --details=summary --disable-banner 2>&1 \
    | grep -E "ERROR SUMMARY|RACECHECK SUMMARY|tests (successful|failed)"
done
echo "## done (${SECONDS} s)"
