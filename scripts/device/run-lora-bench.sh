#!/usr/bin/env bash
# Runs on the GPU host from a staged folder (stage.sh, plus bench_peft_lora.py and
# mixtral-8x7b-config.json copied beside this script): the LoRA and recomputation GPU tests, then
# the Mixtral 8x7B LoRA bench (transformers + PEFT first, then moetune, in one LoraBench run),
# with the short table last. Logs go to $OUT. Every step has a timeout: BENCH_TIMEOUT,
# TEST_TIMEOUT (seconds); BENCH_ARGS replaces the bench's arguments.
set -uo pipefail
cd "$(dirname "$0")"
OUT="${OUT:-/tmp/moetune-out}"
mkdir -p "$OUT" /tmp/mt
. ./java-env.sh  # java, cp, launcher, jopts; the runtime and the kernels' fatbin unpacked
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/device.txt"
t0=$(date +%s)
timeout "${TEST_TIMEOUT:-60}" $java "${jopts[@]}" -Xmx8g -jar $launcher execute -cp "$cp" \
  --select-class=moetune.engine.model.LoraGpuTest \
  --select-class=moetune.engine.model.MixtralModelGpuTest \
  --select-class=moetune.engine.model.RecomputeGpuTest \
  --select-method='moetune.engine.backend.cuda.CudaDenseOpsTest#randomNormalMatchesTheCpu(moetune.engine.tensor.DType)' \
  --include-tag=gpu --details=tree --disable-banner --reports-dir="$OUT/junit" > "$OUT/tests.log" 2>&1
rc_tests=$?
t1=$(date +%s)
grep -E "error|gradient error|peak|✘|MethodSource|Exception" "$OUT/tests.log" | grep -v "^\s*$" | head -40
args=${BENCH_ARGS:-"--config mixtral-8x7b-config.json --seq-len 4096 --r 16 --alpha 32 --steps 3 --warmup 1 --recompute layer --residual bf16 --script bench_peft_lora.py --targets q_proj,k_proj,v_proj,o_proj;q_proj,k_proj,v_proj,o_proj,w1,w2,w3"}
PYTHONUNBUFFERED=1 timeout "${BENCH_TIMEOUT:-150}" $java "${jopts[@]}" -Xmx24g -cp "$cp" \
  moetune.engine.bench.LoraBench $args > "$OUT/bench.log" 2>&1
rc_bench=$?
t2=$(date +%s)
grep -vE "^\| |^\|---|moetune / reference" "$OUT/bench.log" | tail -40
echo "=== results ==="
grep -E "tests (found|successful|failed|skipped|aborted)" "$OUT/tests.log"
echo "junit exit $rc_tests ($((t1 - t0)) s); bench exit $rc_bench ($((t2 - t1)) s)"
grep -E "^\| |^\|---|moetune / reference" "$OUT/bench.log"
