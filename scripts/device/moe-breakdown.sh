#!/usr/bin/env bash
# One device call from the staged folder (scripts/device/stage.sh .device/NAME, this script copied
# beside it): MoeLayerBench (what `moetune bench moe --breakdown` prints) with the per-op breakdown
# of the layer's forward+backward on the three shapes of issue 10, dense cuBLAS in the same run.
# MOE_BENCH_KERNELS / BENCH_ARGS / MOETUNE_MOE_* pass through; BENCH_LIMIT caps the bench (s).
set -uo pipefail
cd "$(dirname "$0")"
OUT="${OUT:-/tmp/moetune-out}"; mkdir -p "$OUT" /tmp/mt
[ -x /tmp/mt/jre/bin/java ] || tar -C /tmp/mt -xJf jre.tar.xz
java=/tmp/mt/jre/bin/java
cp="test-classes:$(ls lib/*.jar | grep -v console-standalone | tr '\n' ':')"
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader
MOE_BENCH_V2=0 MOE_BENCH_BREAKDOWN=1 timeout -k 5 "${BENCH_LIMIT:-150}" \
  "$java" --enable-native-access=ALL-UNNAMED -Xmx24g -cp "$cp" moetune.engine.backend.cuda.MoeLayerBench \
  ${BENCH_ARGS:-} > "$OUT/moe-breakdown.log" 2>&1
echo "bench exit $?"
grep -E "^MOETUNE|^\||rror|xception" "$OUT/moe-breakdown.log" | head -150
