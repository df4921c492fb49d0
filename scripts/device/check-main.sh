#!/usr/bin/env bash
# One device call for a merged main (run from the folder stage.sh filled, e.g.
# `cd .device/main && ./check-main.sh` with carry [".device/main"]): every @Tag("gpu") test of
# the engine (no sanitizers), then `bench step` on the 1.5B config with transformers timed in
# the same run. Logs under $OUT; a short table last.
set -uo pipefail
cd "$(dirname "$0")"
OUT="${OUT:-/tmp/moetune-out}"
mkdir -p "$OUT"
repo="$(cd ../.. && pwd)"
SANITIZE=0 SELECT="--select-package=moetune.engine" timeout "${TESTS_TIMEOUT:-150}" ./run-gpu-tests.sh \
  > "$OUT/gpu-tests.log" 2>&1
echo "gpu tests exit $?"
java=/tmp/mt/jre/bin/java
cp="test-classes:$(ls lib/*.jar | grep -v console-standalone | tr '\n' ':')"
timeout "${STEP_TIMEOUT:-150}" "$java" --enable-native-access=ALL-UNNAMED -Xmx24g -cp "$cp" \
  moetune.engine.bench.StepBenchReport --config 1.5b --micro-batch 4 --seq-len 2048 \
  --steps "${STEPS:-6}" --warmup 2 --reference transformers \
  --reference-script "$repo/tools/bench_transformers_step.py" > "$OUT/bench-step.log" 2>&1
echo "bench step exit $?"
if [ "${CUDNN_PASS:-1}" = 1 ]; then
  # the same model, trainer, recompute and LoRA GPU tests with cuDNN attention forced, then the
  # step on that path (no reference: the rows above are the same run's transformers)
  MOETUNE_ATTENTION=cudnn OUT="$OUT/cudnn" SANITIZE=0 SELECT="--select-class=moetune.engine.model.MixtralModelGpuTest \
    --select-class=moetune.engine.model.MixtralAttentionPathsGpuTest --select-class=moetune.engine.model.RecomputeGpuTest \
    --select-class=moetune.engine.train.MixtralTrainerGpuTest --select-class=moetune.engine.model.LoraGpuTest" \
    timeout "${TESTS_TIMEOUT:-150}" ./run-gpu-tests.sh > "$OUT/gpu-tests-cudnn.log" 2>&1
  echo "gpu tests (cudnn) exit $?"
  MOETUNE_ATTENTION=cudnn timeout "${STEP_TIMEOUT:-150}" "$java" --enable-native-access=ALL-UNNAMED -Xmx24g -cp "$cp" \
    moetune.engine.bench.StepBenchReport --config 1.5b --micro-batch 4 --seq-len 2048 \
    --steps "${STEPS:-6}" --warmup 2 > "$OUT/bench-step-cudnn.log" 2>&1
  echo "bench step (cudnn) exit $?"
fi
echo "=== gpu tests ==="
grep -E "tests (found|successful|failed|skipped)" "$OUT/gpu-tests.log"
grep -E "✘" "$OUT/gpu-tests.log" | head -20
echo "=== bench step ==="
tail -40 "$OUT/bench-step.log"
if [ -f "$OUT/gpu-tests-cudnn.log" ]; then
  echo "=== gpu tests, MOETUNE_ATTENTION=cudnn ==="
  grep -E "tests (found|successful|failed|skipped)" "$OUT/gpu-tests-cudnn.log"
  grep -E "✘" "$OUT/gpu-tests-cudnn.log" | head -20
  echo "=== bench step, MOETUNE_ATTENTION=cudnn ==="
  tail -25 "$OUT/bench-step-cudnn.log"
fi
