#!/usr/bin/env bash
# One device call from the staged folder (scripts/device/stage.sh .device/NAME stages this script
# there): ncu (clocks not locked) of the float32 dW kernels (variant 42 for `auto`, variant 14
# for `v14`) on the Mixtral shape, dW2 then dW1 of one layer call: duration, SM clock, SM and L2
# throughput, DRAM, the main stalls. Whole reports in $OUT/ncu-FAMILY.txt.
cd "$(dirname "$0")"
export OUT="${OUT:-/tmp/moetune-out}"; mkdir -p "$OUT"
. ./java-env.sh
for fam in auto v14; do
  MOE_BENCH_V2=0 MOE_BENCH_KERNELS=$fam timeout -k 5 150 ncu --clock-control none \
    -k "regex:group_xty_ws256_tmar" --launch-skip 2 --launch-count 2 \
    --section SpeedOfLight --section MemoryWorkloadAnalysis --section WarpStateStats --print-details all \
    "$java" "${jopts[@]}" -Xmx16g -cp "$cp" moetune.engine.backend.cuda.MoeLayerBench \
    16384 4096 14336 8 2 > "$OUT/ncu-$fam.txt" 2>&1
  echo "ncu $fam exit $?"
  grep -E "^  [a-zA-Z_0-9]+.*\(|Duration|SM Frequency|Compute \(SM\) Throughput|Memory Throughput|DRAM Throughput|L2 Cache Throughput|L1/TEX Hit|L2 Hit|Stall (Long|Barrier|Wait|LG|MIO|Math)" "$OUT/ncu-$fam.txt" | head -40
done
