#!/usr/bin/env bash
# One device call for a merged main (run from the folder stage.sh filled, e.g.
# `cd .device/main && ./check-main.sh` with carry [".device/main"]), most important first:
#   1. every @Tag("gpu") test of the engine on the default paths (cuDNN attention where found);
#   2. `bench step` on the 1.5B config with transformers timed in the same run;
#   3. the model, attention-path, recompute, trainer and LoRA GPU tests again with the other
#      attention path (OTHER_ATTENTION, default own), and the step on it;
#   4. `bench attention` on both paths with SDPA in the same run, `bench moe` with dense cuBLAS
#      (and torch._grouped_mm when torch is there), `bench kernels`;
#   5. the MoE kernel families' tests and the layer bench of auto next to variant 3 (n256, n128).
# Set SKIP="attn moe kernels other ws" (any of them) to leave parts out. Logs under $OUT; a short
# table of each part last.
set -uo pipefail
cd "$(dirname "$0")"
OUT="${OUT:-/tmp/moetune-out}"
mkdir -p "$OUT"
repo="$(cd ../.. && pwd)"
skip() { [[ " ${SKIP:-} " == *" $1 "* ]]; }
# every part gets its own cap, cut to what is left of BUDGET seconds for the whole call (the
# summary must still print); -k: a JVM stuck in a kernel ignores TERM, KILL follows 10 s later
BUDGET="${BUDGET:-540}"
cap() { local left=$((BUDGET - SECONDS - 15)); [ "$left" -lt 5 ] && left=5; [ "$1" -lt "$left" ] && echo "$1" || echo "$left"; }
tmo() { local c; c=$(cap "$1"); shift; timeout -k 10 "$c" "$@"; }
. ./java-env.sh  # java and cp, the runtime and the kernels' fatbin unpacked
SANITIZE=0 SELECT="--select-package=moetune.engine" tmo "${TESTS_TIMEOUT:-150}" ./run-gpu-tests.sh \
  > "$OUT/gpu-tests.log" 2>&1
echo "gpu tests exit $?"
jrun=("$java" --enable-native-access=ALL-UNNAMED -Xmx24g -cp "$cp")
tmo "${STEP_TIMEOUT:-150}" "${jrun[@]}" moetune.engine.bench.StepBenchReport --config 1.5b \
  --micro-batch 4 --seq-len 2048 --steps "${STEPS:-6}" --warmup 2 --reference transformers \
  --reference-script "$repo/tools/bench_transformers_step.py" > "$OUT/bench-step.log" 2>&1
echo "bench step exit $?"
other="${OTHER_ATTENTION:-own}"
if ! skip other; then
  MOETUNE_ATTENTION=$other OUT="$OUT/$other" SANITIZE=0 SELECT="--select-class=moetune.engine.model.MixtralModelGpuTest \
    --select-class=moetune.engine.model.MixtralAttentionPathsGpuTest --select-class=moetune.engine.model.RecomputeGpuTest \
    --select-class=moetune.engine.train.MixtralTrainerGpuTest --select-class=moetune.engine.model.LoraGpuTest" \
    tmo "${OTHER_TIMEOUT:-100}" ./run-gpu-tests.sh > "$OUT/gpu-tests-$other.log" 2>&1
  echo "gpu tests ($other) exit $?"
  MOETUNE_ATTENTION=$other tmo "${OTHER_STEP_TIMEOUT:-60}" "${jrun[@]}" moetune.engine.bench.StepBenchReport \
    --config 1.5b --micro-batch 4 --seq-len 2048 --steps "${STEPS:-6}" --warmup 2 \
    > "$OUT/bench-step-$other.log" 2>&1
  echo "bench step ($other) exit $?"
fi
if ! skip attn; then
  for path in cudnn own; do
    MOETUNE_ATTENTION=$path tmo "${ATTN_TIMEOUT:-60}" "${jrun[@]}" moetune.engine.backend.cuda.AttentionBench \
      "$repo/tools/bench_sdpa.py" default > "$OUT/bench-attn-$path.log" 2>&1
    echo "bench attention ($path) exit $?"
  done
fi
if ! skip moe; then  # from the repository root: MoeLayerBench finds tools/bench_scattermoe.py there
  (cd "$repo" && timeout -k 10 "$(cap "${MOE_TIMEOUT:-90}")" "$java" --enable-native-access=ALL-UNNAMED -Xmx24g \
    -cp "$cp" moetune.engine.backend.cuda.MoeLayerBench ${MOE_ARGS:-}) > "$OUT/bench-moe.log" 2>&1
  echo "bench moe exit $?"
fi
if ! skip kernels; then
  tmo "${KERNELS_TIMEOUT:-60}" "$java" --enable-native-access=ALL-UNNAMED -Xmx8g -cp "$cp" \
    moetune.engine.bench.KernelBandwidthBench --reps 10 > "$OUT/bench-kernels.log" 2>&1
  echo "bench kernels exit $?"
fi
if ! skip ws; then
  # last: the MoE kernel families' tests, then the layer bench of the default (auto: the
  # warp-specialised TMA kernels on Hopper) next to variant 3's two tilings
  OUT="$OUT/ws" SANITIZE=0 SELECT="--select-class=moetune.engine.backend.cuda.CudaMoeOpsTest" \
    tmo "${WS_TIMEOUT:-70}" ./run-gpu-tests.sh > "$OUT/gpu-tests-ws.log" 2>&1
  echo "gpu tests (ws) exit $?"
  (cd "$repo" && MOE_BENCH_KERNELS=auto,n256,n128 timeout -k 10 "$(cap "${WS_BENCH_TIMEOUT:-80}")" "$java" \
    --enable-native-access=ALL-UNNAMED -Xmx24g -cp "$cp" moetune.engine.backend.cuda.MoeLayerBench) \
    > "$OUT/bench-moe-ws.log" 2>&1
  echo "bench moe (ws) exit $?"
fi
echo "=== gpu tests ==="
grep -E "tests (found|successful|failed|aborted|skipped)" "$OUT/gpu-tests.log"
grep -E "✘" "$OUT/gpu-tests.log" | head -20
echo "=== bench step ==="
grep -E "^\||x the|attention:" "$OUT/bench-step.log" | head -40
if [ -f "$OUT/gpu-tests-$other.log" ]; then
  echo "=== gpu tests, MOETUNE_ATTENTION=$other ==="
  grep -E "tests (found|successful|failed|aborted|skipped)" "$OUT/gpu-tests-$other.log"
  grep -E "✘" "$OUT/gpu-tests-$other.log" | head -20
  echo "=== bench step, MOETUNE_ATTENTION=$other ==="
  grep -E "^\| (moetune|attention|MoE)" "$OUT/bench-step-$other.log" | head -5
fi
for f in "$OUT"/bench-attn-*.log; do [ -f "$f" ] && { echo "=== $(basename "$f") ==="; grep -E "^\|" "$f" | tail -14; }; done
[ -f "$OUT/bench-moe.log" ] && { echo "=== bench moe ==="; grep -E "^\|" "$OUT/bench-moe.log" | tail -12; }
if [ -f "$OUT/gpu-tests-ws.log" ]; then
  echo "=== MoE kernel families: tests, bench (auto, n256, n128) ==="
  grep -E "tests (found|successful|failed|aborted|skipped)|✘" "$OUT/gpu-tests-ws.log" | head -12
  grep -E "^\|" "$OUT/bench-moe-ws.log" | tail -12
fi
[ -f "$OUT/bench-kernels.log" ] && { echo "=== bench kernels ==="; grep -E "^\|" "$OUT/bench-kernels.log" | tail -24; }
