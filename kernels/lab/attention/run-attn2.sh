#!/usr/bin/env bash
# Second call: the GPU tests with the new defaults (backward v4 at hd 64, v1 at hd 128).
set -uo pipefail
cd "$(dirname "$0")"
OUT="${OUT:-/tmp/attn-out}"
mkdir -p "$OUT"
. ./java-env.sh  # java, cp, launcher, fixtures, jopts (stage.sh's)
timeout 60 $java "${jopts[@]}" -jar $launcher execute -cp "$cp" \
  --select-class=moetune.engine.backend.cuda.CudaAttentionTest \
  --select-class=moetune.engine.model.MixtralAttentionPathsGpuTest \
  --select-class=moetune.engine.train.MixtralTrainerGpuTest \
  --select-class=moetune.engine.backend.cuda.CudaLayerOpsTest \
  --select-class=moetune.engine.backend.cuda.AttentionPathTest \
  --include-tag=gpu --details=tree --disable-banner > "$OUT/tests.log" 2>&1
echo "tests rc $?"
sed 's/\x1b\[[0-9;]*m//g' "$OUT/tests.log" | grep -E "✘|vs cpu|own vs scalar|calls on the tensor-core|tests (successful|failed)" | sed 's/^[│├└─ ]*//' | head -30
