#!/usr/bin/env bash
# Second call: moetune's 8x7B LoRA step profiled (both target lists, bf16 residual), then the
# q/k/v/o row with moetune's default fp32 residual stream (its peak memory).
set -uo pipefail
cd "$(dirname "$0")"
OUT="${OUT:-/tmp/moetune-out}"; mkdir -p "$OUT" /tmp/mt
. ./java-env.sh  # java and cp, the runtime and the kernels' fatbin unpacked
common="--config mixtral-8x7b-config.json --seq-len 4096 --r 16 --alpha 32 --recompute layer --no-reference"
timeout 60 $java --enable-native-access=ALL-UNNAMED -Xmx24g -cp "$cp" moetune.engine.bench.LoraBench $common \
  --steps 3 --warmup 1 --residual bf16 --profile \
  --targets "q_proj,k_proj,v_proj,o_proj;q_proj,k_proj,v_proj,o_proj,w1,w2,w3" 2>&1 | tee "$OUT/profile.log"
timeout 40 $java --enable-native-access=ALL-UNNAMED -Xmx24g -cp "$cp" moetune.engine.bench.LoraBench $common \
  --steps 3 --warmup 1 --residual fp32 --targets "q_proj,k_proj,v_proj,o_proj" 2>&1 | tee "$OUT/fp32-residual.log"
