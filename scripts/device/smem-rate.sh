#!/usr/bin/env bash
# One device call from the staged folder (scripts/device/stage.sh .device/NAME, this script copied
# beside it, kernels/lab/moe/wgmma_rate.cu in the checkout): is the shared memory's bandwidth what
# caps the MoE kernels' tensor rate? 1. wgmma_rate (built here with nvcc unless WGMMA_RATE names a
# binary): the tensor rate of one, two and three warpgroups issuing wgmma from shared memory, alone
# and beside a warpgroup filling other shared memory. 2. ncu (clocks not locked) of wgmma_rate's
# kernels and of the layer's six products on SHAPE (default the 1.5B shape), with the shared-memory
# bank and pipe metrics this ncu knows (listed first), so the products' shared-memory load can be
# read against the calibration of the pure-wgmma kernels. LIMIT caps each ncu run (s).
set -uo pipefail
cd "$(dirname "$0")"
OUT="${OUT:-/tmp/moetune-out}"; mkdir -p "$OUT" /tmp/mt
src=""  # the checkout's lab source: the staged folder sits somewhere under the checkout
for up in .. ../.. ../../..; do [ -f "$up/kernels/lab/moe/wgmma_rate.cu" ] && src="$up/kernels/lab/moe/wgmma_rate.cu" && break; done
bin="${WGMMA_RATE:-/tmp/mt/wgmma_rate}"
if [ ! -x "$bin" ]; then
  [ -n "$src" ] || { echo "no kernels/lab/moe/wgmma_rate.cu above $(pwd): stage under the checkout or set WGMMA_RATE"; exit 2; }
  nvcc -O3 -std=c++17 -gencode arch=compute_90a,code=sm_90a -o "$bin" "$src" > "$OUT/wgmma-rate-build.txt" 2>&1 \
    || { echo "wgmma_rate build failed"; tail -5 "$OUT/wgmma-rate-build.txt"; }
fi
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv,noheader
"$bin" "${ITERS:-20000}" 2>&1 | tee "$OUT/wgmma-rate.txt"
command -v ncu > /dev/null || { echo "no ncu"; exit 0; }
ncu --query-metrics --chip gh100 > "$OUT/ncu-metrics.txt" 2>&1
want="l1tex__data_bank_reads l1tex__data_bank_writes l1tex__data_pipe_lsu_wavefronts_mem_shared \
  l1tex__throughput sm__pipe_tensor_op_gmma_cycles_active sm__pipe_tensor_op_hmma_cycles_active \
  sm__inst_executed_pipe_tensor_op_gmma smsp__inst_executed_pipe_uniform lts__throughput dram__throughput \
  l1tex__m_xbar2l1tex_read_bytes l1tex__m_l1tex2xbar_write_bytes"
metrics=""
for m in $want; do
  if grep -qE "^$m[[:space:]]" "$OUT/ncu-metrics.txt"; then
    case $m in
      *bytes) metrics="$metrics,$m.sum.per_second" ;;
      *) metrics="$metrics,$m.avg.pct_of_peak_sustained_elapsed" ;;
    esac
  else
    echo "ncu has no $m"
  fi
done
metrics="gpu__time_duration.sum,sm__cycles_elapsed.avg.per_second${metrics}"
echo "metrics: $metrics"
WGMMA_RATE_REPS=1 timeout -k 5 "${LIMIT:-120}" ncu --clock-control none -k regex:rate_kernel \
  --metrics "$metrics" "$bin" 300 > "$OUT/ncu-rate.txt" 2>&1
echo "ncu wgmma_rate exit $?"
grep -E "rate_kernel|duration|per_second|pct_of_peak" "$OUT/ncu-rate.txt" | sed 's/  */ /g' | head -300 \
  > "$OUT/ncu-rate-short.txt"
. ./java-env.sh
MOE_BENCH_V2=0 MOE_BENCH_KERNELS="${FAMILY:-auto}" timeout -k 5 "${LIMIT:-120}" ncu --clock-control none \
  -k "regex:${KREGEX:-ws256}" --launch-skip "${SKIP:-6}" --launch-count "${COUNT:-6}" --kill yes \
  --metrics "$metrics" \
  "$java" "${jopts[@]}" -Xmx16g -cp "$cp" moetune.engine.backend.cuda.MoeLayerBench ${SHAPE:-16384 1024 3584 8 2} \
  > "$OUT/ncu-products.txt" 2>&1
echo "ncu products exit $?"
grep -E "^  [a-zA-Z_0-9]+.*\(|duration|per_second|pct_of_peak" "$OUT/ncu-products.txt" | sed 's/  */ /g' | head -120
echo "--- wgmma_rate under ncu (first launches of each configuration)"
head -200 "$OUT/ncu-rate-short.txt"
