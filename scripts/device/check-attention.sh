#!/usr/bin/env bash
# One device call (copy into the folder stage.sh filled, e.g. `cd .device/main && ./check-attention.sh`
# with carry [".device/main"]): cuDNN attention tests alone first (a crashing cuDNN must not take the
# rest down; if they fail, MOETUNE_TEST_CUDNN=0 leaves cuDNN out of the next step), then every engine
# GPU test, then the attention bench on the cuDNN path with SDPA timed in the same run.
set -uo pipefail
cd "$(dirname "$0")"
OUT="${OUT:-/tmp/moetune-out}"; mkdir -p "$OUT"
repo="$(cd ../.. && pwd)"
SANITIZE=0 SELECT="--select-class=moetune.engine.backend.cuda.CudnnAttentionTest" timeout 40 ./run-gpu-tests.sh > "$OUT/cudnn.log" 2>&1
rc=$?; echo "cudnn test exit $rc"
grep -q "tests successful" "$OUT/cudnn.log" && grep -q "0 tests failed" "$OUT/cudnn.log" && [ $rc = 0 ] || export MOETUNE_TEST_CUDNN=0
echo "MOETUNE_TEST_CUDNN=${MOETUNE_TEST_CUDNN:-1}"
SANITIZE=0 SELECT="--select-package=moetune.engine" timeout 110 ./run-gpu-tests.sh > "$OUT/gpu-tests.log" 2>&1
echo "gpu tests exit $?"
. ./java-env.sh  # java and cp, the runtime and the kernels' fatbin unpacked
if [ "${MOETUNE_TEST_CUDNN:-1}" != 0 ]; then
  MOETUNE_ATTENTION=cudnn timeout 45 $java --enable-native-access=ALL-UNNAMED -Xmx16g -cp "$cp" \
    moetune.engine.backend.cuda.AttentionBench "$repo/tools/bench_sdpa.py" default > "$OUT/bench-attn-cudnn.log" 2>&1
  echo "attn bench exit $?"
fi
echo "=== cudnn ==="; grep -E "tests (successful|failed|aborted)|✘|SIGSEGV|cuDNN [0-9]" "$OUT/cudnn.log" | head
echo "=== gpu tests ==="; grep -E "tests (found|successful|failed|aborted|skipped)" "$OUT/gpu-tests.log"; grep -E "✘" "$OUT/gpu-tests.log" | head -12
echo "=== attention cudnn ==="; grep -E "^\| [0-9]" "$OUT/bench-attn-cudnn.log" 2>/dev/null
echo "=== step ==="; grep -E "tokens/s|moetune" "$OUT/step-own.log" | head -4; grep -E "tokens/s|moetune" "$OUT/step-cudnn.log" 2>/dev/null | head -4
