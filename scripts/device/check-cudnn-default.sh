#!/usr/bin/env bash
# One device call for issue 9's cuDNN path (copy into the folder stage.sh filled with
# tools/bench_sdpa.py beside it, e.g. `cd .device/NAME && ./check-cudnn-default.sh`): the cuDNN
# attention tests alone (a crashing cuDNN must not take the rest down), then the attention, model
# and trainer GPU tests in ONE JVM with MOETUNE_ATTENTION unset (cuDNN is the default path), then
# the attention bench on the default path with SDPA timed the same way in the same run.
set -uo pipefail
cd "$(dirname "$0")"
OUT="${OUT:-/tmp/moetune-out}"; mkdir -p "$OUT"
unset MOETUNE_ATTENTION
SANITIZE=0 SELECT="--select-class=moetune.engine.backend.cuda.CudnnAttentionTest" \
  timeout "${T_CUDNN:-90}" ./run-gpu-tests.sh > "$OUT/cudnn.log" 2>&1
rc=$?; echo "cudnn test exit $rc"
if ! grep -q "tests successful" "$OUT/cudnn.log"; then
  echo "cuDNN tests did not finish: the rest runs on the own kernels"; export MOETUNE_TEST_CUDNN=0 MOETUNE_ATTENTION=own
fi
sel="--select-class=moetune.engine.backend.cuda.CudaAttentionTest --select-class=moetune.engine.model.MixtralModelGpuTest"
sel="$sel --select-class=moetune.engine.model.MixtralAttentionPathsGpuTest --select-class=moetune.engine.train.MixtralTrainerGpuTest"
SANITIZE=0 SELECT="$sel" timeout "${T_TESTS:-200}" ./run-gpu-tests.sh > "$OUT/gpu-tests.log" 2>&1
echo "gpu tests exit $?"
. ./java-env.sh  # java and cp, the runtime and the kernels' fatbin unpacked
timeout "${T_BENCH:-120}" $java --enable-native-access=ALL-UNNAMED -Xmx16g -cp "$cp" \
  moetune.engine.backend.cuda.AttentionBench ./bench_sdpa.py default > "$OUT/bench-attn.log" 2>&1
echo "attn bench exit $?"
echo "=== cudnn ==="; grep -E "tests (successful|failed|aborted)|✘|SIGSEGV|cuDNN [0-9]" "$OUT/cudnn.log" | head -12
echo "=== gpu tests ==="; grep -E "tests (found|successful|failed|aborted|skipped)" "$OUT/gpu-tests.log"
grep -E "✘|calls on cuDNN|attention:" "$OUT/gpu-tests.log" | head -30
echo "=== bench ==="; grep -E "^attention bench|^causal|^\||^reference" "$OUT/bench-attn.log"
