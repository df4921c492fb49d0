#!/usr/bin/env bash
# Runs on a GPU host with 2 or more GPUs, from the folder stage.sh fills (it copies this script
# there): the @Tag("multi-gpu") tests (NCCL collectives across GPUs against hand sums), then the
# CPU data-parallel tests once more on this host as a control. Logs and JUnit XML go to $OUT.
# Not run yet: no machine with 2+ GPUs was lent when it was written (see docs/multi-gpu.md).
set -uo pipefail
cd "$(dirname "$0")"
OUT="${OUT:-/tmp/moetune-out}"
mkdir -p "$OUT" /tmp/mt
n=$(nvidia-smi -L 2>/dev/null | wc -l)
echo "GPUs: $n" | tee "$OUT/multi-gpu-device.txt"
if [ "$n" -lt 2 ]; then
  echo "run-multi-gpu.sh needs 2 or more GPUs; this host has $n" >&2
  exit 2
fi
nvidia-smi topo -m >> "$OUT/multi-gpu-device.txt" 2>&1
# NCCL: the system's, else the one PyTorch's wheel ships (nvidia/nccl/lib)
if [ -z "${MOETUNE_NCCL:-}" ]; then
  lib=$(find / -xdev -name 'libnccl.so.2' 2>/dev/null | head -1)
  [ -n "$lib" ] && export MOETUNE_NCCL="$lib"
fi
echo "NCCL: ${MOETUNE_NCCL:-not found}" | tee -a "$OUT/multi-gpu-device.txt"
[ -f /tmp/mt/jre/bin/java ] || tar -C /tmp/mt -xJf jre.tar.xz
java=/tmp/mt/jre/bin/java
cp="test-classes:$(ls lib/*.jar | grep -v console-standalone | tr '\n' ':')"
launcher=lib/junit-platform-console-standalone-1.14.1.jar
jopts=(--enable-native-access=ALL-UNNAMED -Xmx16g)
$java "${jopts[@]}" -jar $launcher execute -cp "$cp" \
  --select-class=moetune.engine.backend.cuda.NcclCommunicatorGpuTest --include-tag=multi-gpu \
  --details=tree --disable-banner --reports-dir="$OUT/junit-multi" 2>&1 | tee "$OUT/multi-gpu-tests.log" | tail -40
rc_gpu=${PIPESTATUS[0]}
$java "${jopts[@]}" -jar $launcher execute -cp "$cp" \
  --select-package=moetune.engine.dist --select-class=moetune.engine.train.DataParallelTrainerTest \
  --select-class=moetune.engine.train.ShardedAdamWTest \
  --details=summary --disable-banner --reports-dir="$OUT/junit-dp-cpu" > "$OUT/dp-cpu-tests.log" 2>&1
rc_cpu=$?
echo "=== results ==="
grep -E "tests (successful|failed|skipped)" "$OUT/multi-gpu-tests.log" "$OUT/dp-cpu-tests.log"
echo "multi-gpu junit exit $rc_gpu; data-parallel CPU junit exit $rc_cpu"
