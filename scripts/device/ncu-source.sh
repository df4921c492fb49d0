#!/usr/bin/env bash
# One device call from the staged folder (scripts/device/stage.sh .device/NAME, this script copied
# beside it): Nsight Compute's warp-state sampling of one MoE kernel of MoeLayerBench, per SASS
# instruction, so an epilogue's stalls can be told apart from its main loop's. For each shape in
# SHAPES ("T D F E k", ';' between shapes): ncu (clocks not locked) of one launch of the kernels
# matching KREGEX (default variant 13's dX2) in family FAMILY (default auto), the report's
# scheduler and warp-state sections, then its source page as CSV summarised by
# tools/ncu_source_summary.py: the instructions with the most stall samples, and the samples
# summed by opcode and by stall reason. LIMIT caps each ncu run (s). MEM=1 adds the memory
# workload sections (shared-memory and L1 throughput, bank conflicts) and prints their lines.
set -uo pipefail
cd "$(dirname "$0")"
OUT="${OUT:-/tmp/moetune-out}"; mkdir -p "$OUT" /tmp/mt
. ./java-env.sh
IFS=';' read -ra shapes <<< "${SHAPES:-16384 1024 3584 8 2;16384 4096 14336 8 2}"
i=0
for shape in "${shapes[@]}"; do
  i=$((i + 1))
  rep=/tmp/mt/ncu-src-$i
  MOE_BENCH_V2=0 MOE_BENCH_KERNELS="${FAMILY:-auto}" timeout -k 5 "${LIMIT:-90}" ncu --clock-control none \
    -k "regex:${KREGEX:-glubwd_kernel13}" --launch-skip "${SKIP:-3}" --launch-count 1 \
    --section SchedulerStats --section WarpStateStats --section SourceCounters \
    --section SpeedOfLight ${MEM:+--section MemoryWorkloadAnalysis --section MemoryWorkloadAnalysis_Tables} \
    -f -o "$rep" \
    "$java" "${jopts[@]}" -Xmx16g -cp "$cp" moetune.engine.backend.cuda.MoeLayerBench $shape \
    > "$OUT/ncu-src-run-$i.txt" 2>&1
  echo "shape $shape: ncu exit $?"
  [ -f "$rep.ncu-rep" ] || { tail -5 "$OUT/ncu-src-run-$i.txt"; continue; }
  ncu -i "$rep.ncu-rep" --print-details all > "$OUT/ncu-src-details-$i.txt" 2>&1
  grep -E "^  [a-zA-Z_0-9]+.*\(|Duration|Compute \(SM\) Throughput|DRAM Throughput|Eligible Warps|Issued Warp|No Eligible|Active Warps|Stall [A-Z]" \
    "$OUT/ncu-src-details-$i.txt" | head -40
  if [ -n "${MEM:-}" ]; then
    grep -iE "shared|bank|L1/TEX Hit|Mem Busy|Max Bandwidth|Mem Pipes" "$OUT/ncu-src-details-$i.txt" | head -30
  fi
  ncu -i "$rep.ncu-rep" --page source --csv --print-source sass > "$OUT/ncu-src-$i.csv" 2>&1
  python3 ncu_source_summary.py "$OUT/ncu-src-$i.csv" | tee "$OUT/ncu-src-summary-$i.txt"
done
