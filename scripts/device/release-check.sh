#!/usr/bin/env bash
# Runs on the GPU host from the repository root with .device/ carried (see stage-release.sh):
#  1. the GPU tests (ops, the z-loss model test, the trainer) on the dist tarball's own runtime;
#  2. the README's main job on the GPU (`moetune train --demo`, device auto);
#  3. a 50-step bf16 GPU run against the same run on the CPU (loss curves side by side);
#  4. an fp32 and a bf16 export of the GPU-trained model checked by transformers.
# Logs go to $OUT; a short table is printed last.
set -uo pipefail
OUT="${OUT:-/tmp/moetune-out}"
mkdir -p "$OUT" /tmp/mt
tar -C /tmp/mt -xzf .device/moetune-*-linux-x86_64.tar.gz
home="$(ls -d /tmp/mt/moetune-*)"
mt="$home/bin/moetune"
java="$home/runtime/bin/java"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/device.txt"
command -v java >/dev/null && echo "note: a java is on PATH" || echo "no java on PATH: only the dist's runtime"

cp=".device/test-classes:$(ls "$home"/lib/*.jar | tr '\n' ':')"
"$java" --enable-native-access=ALL-UNNAMED -Xmx16g -Dmoetune.fixtures="$PWD/fixtures" \
  -jar .device/junit-platform-console-standalone-1.14.1.jar execute -cp "$cp" \
  --select-package=moetune.engine.backend.cuda \
  --select-class=moetune.engine.train.MixtralTrainerGpuTest \
  --select-method='moetune.engine.model.MixtralModelGpuTest#routerZLossMatchesTheCpu' \
  --select-method='moetune.engine.model.MixtralModelGpuTest#bf16CachedDecodingEqualsFullForward' \
  --include-tag=gpu --details=tree --disable-banner > "$OUT/gpu-tests.log" 2>&1
rc_tests=$?

t0=$(date +%s)
"$mt" train --demo --out /tmp/demo-gpu > "$OUT/demo-gpu.log" 2>&1
rc_demo=$?
t1=$(date +%s)
"$mt" train --demo --out /tmp/curve-cpu --device cpu --max-steps 50 > "$OUT/curve-cpu.log" 2>&1
"$mt" train --demo --out /tmp/curve-gpu --device cuda --precision bf16 --max-steps 50 > "$OUT/curve-gpu.log" 2>&1
python3 tools/compare_curves.py /tmp/curve-cpu/metrics.jsonl /tmp/curve-gpu/metrics.jsonl \
  > "$OUT/curves.txt" 2>&1
rc_curve=$?

rc_export=""
for dt in fp32 bf16; do
  "$mt" export --checkpoint /tmp/demo-gpu --out /tmp/export-$dt --dtype $dt \
    --write-reference-logits /tmp/ref-$dt.safetensors >> "$OUT/export.log" 2>&1
  python3 tools/check_export.py /tmp/export-$dt /tmp/ref-$dt.safetensors >> "$OUT/export.log" 2>&1
  rc_export="$rc_export $dt:$?"
done
cp /tmp/demo-gpu/metrics.jsonl "$OUT/demo-gpu-metrics.jsonl" 2>/dev/null

echo "=== GPU tests ==="; grep -E "tests (successful|failed|skipped)" "$OUT/gpu-tests.log"; grep -E "✘" "$OUT/gpu-tests.log" | head -20
echo "=== demo on the GPU ($((t1 - t0)) s) ==="; grep -E "device|eval loss|exported" "$OUT/demo-gpu.log" | cut -c1-200
echo "=== 50-step loss curves, CPU fp32 vs GPU bf16 ==="; cat "$OUT/curves.txt"
echo "=== export checked by transformers ==="; grep -E "PASS|FAIL|missing|unexpected|rel" "$OUT/export.log" | head -12
echo "=== summary ==="
echo "gpu tests exit $rc_tests | demo exit $rc_demo | curves exit $rc_curve | export$rc_export"
