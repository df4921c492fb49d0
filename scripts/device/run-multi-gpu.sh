#!/usr/bin/env bash
# Runs on a GPU host with 2 or more GPUs, from the folder stage.sh fills (it copies this script
# there): the @Tag("multi-gpu") tests (NCCL collectives across GPUs against hand sums; data and
# expert parallel losses on 2 GPUs against one) and NcclSideStreamGpuTest / NcclOverlapGpuTest
# (NCCL's side stream and its events, one GPU), the CPU data-parallel tests once more on this
# host as a control, then (SCALE=1, the default) the scaling benchmark of issue 13: one GPU, then
# every GPU of the host as ranks started like torchrun would (WORLD_SIZE/RANK/LOCAL_RANK/
# MASTER_ADDR/MASTER_PORT), 1.5B config, 4 x 2048 tokens per GPU; the efficiency table goes to
# $OUT/scaling.md. Logs and JUnit XML go to $OUT.
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
. ./java-env.sh  # java, cp, launcher, jopts; the runtime and the kernels' fatbin unpacked
jopts+=(-Xmx16g)  # the later -Xmx wins over java-env's
timeout 900 $java "${jopts[@]}" -jar $launcher execute -cp "$cp" \
  --select-class=moetune.engine.backend.cuda.NcclCommunicatorGpuTest \
  --select-class=moetune.engine.train.MultiGpuTrainingGpuTest \
  --select-class=moetune.engine.train.NcclOverlapGpuTest --select-class=moetune.engine.backend.cuda.NcclSideStreamGpuTest --include-tag=gpu \
  --details=tree --disable-banner --reports-dir="$OUT/junit-multi" 2>&1 | tee "$OUT/multi-gpu-tests.log" | tail -40
rc_gpu=${PIPESTATUS[0]}
timeout 600 $java "${jopts[@]}" -jar $launcher execute -cp "$cp" \
  --select-package=moetune.engine.dist --select-class=moetune.engine.train.ExpertParallelTest --select-class=moetune.engine.train.DataParallelTrainerTest \
  --select-class=moetune.engine.train.ShardedAdamWTest --select-class=moetune.engine.train.ExpertStreamTest \
  --details=summary --disable-banner --reports-dir="$OUT/junit-dp-cpu" > "$OUT/dp-cpu-tests.log" 2>&1
rc_cpu=$?
echo "=== results ==="
grep -E "tests (successful|failed|skipped)" "$OUT/multi-gpu-tests.log" "$OUT/dp-cpu-tests.log"
echo "multi-gpu junit exit $rc_gpu; data-parallel CPU junit exit $rc_cpu"
if [ "${SCALE:-1}" = 1 ]; then
  ng="${SCALE_GPUS:-$n}"
  bench=(--config 1.5b --micro-batch 4 --seq-len 2048 --steps 10 --warmup 3)
  bopts=(--enable-native-access=ALL-UNNAMED -Xmx24g)
  main=moetune.engine.bench.StepBenchReport
  rm -f "$OUT/scale-1.txt" "$OUT/scale-n.txt"
  WORLD_SIZE=1 RANK=0 LOCAL_RANK=0 MOETUNE_BENCH_RESULT="$OUT/scale-1.txt" \
    timeout 400 $java "${bopts[@]}" -cp "$cp" $main "${bench[@]}" --device cuda > "$OUT/scale-1.log" 2>&1
  for r in $(seq 0 $((ng - 1))); do
    WORLD_SIZE=$ng RANK=$r LOCAL_RANK=$r MASTER_ADDR=127.0.0.1 MASTER_PORT=29517 \
      MOETUNE_BENCH_RESULT="$OUT/scale-n.txt" \
      timeout 500 $java "${bopts[@]}" -cp "$cp" $main "${bench[@]}" --device cuda \
      > "$OUT/scale-n-rank$r.log" 2>&1 &
  done
  wait
  if [ -s "$OUT/scale-1.txt" ] && [ -s "$OUT/scale-n.txt" ]; then
    read -r t1 ms1 < "$OUT/scale-1.txt"
    read -r tn msn < "$OUT/scale-n.txt"
    awk -v a="$t1" -v am="$ms1" -v b="$tn" -v bm="$msn" -v n="$ng" 'BEGIN {
      print "| GPUs | step ms (median) | tokens/s | scaling efficiency |"
      print "|---|---|---|---|"
      printf "| 1 | %.1f | %.0f | 100%% (reference, same run) |\n", am, a
      printf "| %d | %.1f | %.0f | %.1f%% |\n", n, bm, b, 100 * b / (n * a) }' | tee "$OUT/scaling.md"
  else
    echo "scaling benchmark failed; see $OUT/scale-*.log"; tail -5 "$OUT"/scale-*.log
  fi
fi
