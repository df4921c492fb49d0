#!/usr/bin/env bash
# One device call (from a folder stage.sh filled, with tools/bench_peft_lora.py and
# tools/mixtral-8x7b-config.json copied beside it): every engine GPU test on the default paths
# (MoE `auto` = the variant-5 kernels on Hopper), then the Mixtral 8x7B LoRA bench with
# transformers + PEFT in the same run and one profiled moetune step. BUDGET caps the whole call.
set -uo pipefail
cd "$(dirname "$0")"
OUT="${OUT:-/tmp/moetune-out}"; mkdir -p "$OUT" /tmp/mt
BUDGET="${BUDGET:-420}"
cap() { local left=$((BUDGET - SECONDS - 15)); [ "$left" -lt 5 ] && left=5; [ "$1" -lt "$left" ] && echo "$1" || echo "$left"; }
tmo() { local c; c=$(cap "$1"); shift; timeout -k 10 "$c" "$@"; }
. ./java-env.sh  # java and cp, the runtime and the kernels' fatbin unpacked
if [[ " ${SKIP:-} " != *" tests "* ]]; then
  SANITIZE=0 SELECT="${SELECT:---select-package=moetune.engine}" tmo "${TESTS_TIMEOUT:-200}" ./run-gpu-tests.sh \
    > "$OUT/gpu-tests.log" 2>&1
  echo "gpu tests exit $?"
fi
args=${LORA_ARGS:-"--config mixtral-8x7b-config.json --seq-len 4096 --r 16 --alpha 32 --steps 3 --warmup 1 --recompute layer --residual bf16 --profile --script bench_peft_lora.py --targets q_proj,k_proj,v_proj,o_proj;q_proj,k_proj,v_proj,o_proj,w1,w2,w3"}
PYTHONUNBUFFERED=1 tmo "${LORA_TIMEOUT:-200}" "$java" --enable-native-access=ALL-UNNAMED -Xmx24g -cp "$cp" \
  moetune.engine.bench.LoraBench $args > "$OUT/lora.log" 2>&1
echo "lora bench exit $?"
if [ -f "$OUT/gpu-tests.log" ]; then
  echo "=== gpu tests ==="
  grep -E "tests (found|successful|failed|aborted|skipped)" "$OUT/gpu-tests.log"
  grep -A2 -E "✘|■" "$OUT/gpu-tests.log" | cut -c1-220 | head -40
fi
echo "=== lora (profile: top ops) ==="
grep -E "profiled step|^    " "$OUT/lora.log" | head -60
echo "=== lora table ==="
grep -E "^\| |moetune / reference|memory plan|Exception" "$OUT/lora.log" | head -30
