#!/usr/bin/env bash
# moe helper, device call: lab (variants 2/3/4 checked and timed next to cuBLAS), GPU tests,
# layer bench (v2 and auto in the same run), torch._grouped_mm reference.
cd "$(dirname "$0")"
. ./preamble.sh
OUT="${OUT:-/tmp/moe-out}"; mkdir -p "$OUT"
unpack moe_lab_wg
echo "== lab"; date +%T
timeout 150 /tmp/moe_lab_wg 1000 136 264 7 3 517 264 136 5 1 16384 4096 14336 8 2 16384 4096 1792 64 16 16384 1024 3584 8 2 > "$OUT/lab.txt" 2>&1
echo "lab rc $?"; cat "$OUT/lab.txt" | cut -c1-400
echo "== tests"; date +%T
SANITIZE=${SANITIZE:-0} BENCH=${BENCH:-1} SELECT="${SELECT:---select-class=moetune.engine.backend.cuda.CudaMoeOpsTest --select-class=moetune.engine.backend.cuda.MoeSassTest --select-class=moetune.engine.model.LoraGpuTest --select-class=moetune.engine.model.MixtralModelGpuTest}" \
  OUT=/tmp/moetune-out timeout ${TESTS_TIMEOUT:-300} ./run-gpu-tests.sh > "$OUT/run.txt" 2>&1
echo "tests rc $?"; grep -E "MoeSassTest|sm90a|HGMMA|SKIPPED|✘|✔.*bf16|tests (successful|failed|skipped)|exit|SUMMARY|MOETUNE_MOE|\| *[0-9]" "$OUT/run.txt" | head -60
cp /tmp/moetune-out/bench.log /tmp/moetune-out/tests.log /tmp/moetune-out/sanitizer-*.log "$OUT/" 2>/dev/null; cat /tmp/moetune-out/bench.log 2>/dev/null
if [ "${TORCH:-1}" = 1 ]; then
  echo "== torch"; date +%T
  PYTHONUNBUFFERED=1 timeout 90 python3 ../../tools/bench_scattermoe.py --shape 16384,4096,14336,8,2 --shape 16384,4096,1792,64,16 --shape 16384,1024,3584,8,2 2>&1 | grep -v RESULT | tee "$OUT/torch.txt"
fi
date +%T
