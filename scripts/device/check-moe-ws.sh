#!/usr/bin/env bash
# One device call (from the staged folder, like check-main.sh): the warp-specialised MoE kernels
# (MOETUNE_MOE_KERNEL=ws256) on every shape of the layer bench, the model/trainer/LoRA
# GPU tests and the step with MOETUNE_MOE_KERNEL=ws256, and which tests the full run aborted
set -uo pipefail
cd "$(dirname "$0")"; OUT="${OUT:-/tmp/moetune-out}"; mkdir -p "$OUT"; repo="$(cd ../.. && pwd)"
. ./java-env.sh  # java and cp, the runtime and the kernels' fatbin unpacked
MOETUNE_MOE_KERNEL=ws256 SANITIZE=0 SELECT="--select-class=moetune.engine.model.MixtralModelGpuTest --select-class=moetune.engine.train.MixtralTrainerGpuTest --select-class=moetune.engine.model.LoraGpuTest --select-class=moetune.engine.backend.cuda.NcclSideStreamGpuTest --select-class=moetune.engine.train.NcclOverlapGpuTest --select-class=moetune.engine.backend.cuda.NcclCommunicatorGpuTest --select-class=moetune.engine.train.MultiGpuTrainingGpuTest" \
  timeout -k 5 45 ./run-gpu-tests.sh > "$OUT/t.log" 2>&1; echo "tests exit $?"
MOETUNE_MOE_KERNEL=ws256 timeout -k 5 35 "$java" --enable-native-access=ALL-UNNAMED -Xmx24g -cp "$cp" moetune.engine.bench.StepBenchReport --config 1.5b --micro-batch 4 --seq-len 2048 --steps 6 --warmup 2 > "$OUT/step.log" 2>&1; echo "step exit $?"
(cd "$repo" && MOE_BENCH_V2=0 MOE_BENCH_KERNELS=ws256,ws128 timeout -k 5 60 "$java" --enable-native-access=ALL-UNNAMED -Xmx24g -cp "$cp" moetune.engine.backend.cuda.MoeLayerBench) > "$OUT/moe.log" 2>&1; echo "moe exit $?"
grep -E "tests (successful|failed|aborted)|✘|↷|aborted|Assumption|SKIPPED" "$OUT/t.log" | sed 's/\x1b\[[0-9;]*m//g' | head -20
grep -E "^\| (moetune|MoE|attention)" "$OUT/step.log"; grep -E "^\|" "$OUT/moe.log"
