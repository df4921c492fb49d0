#!/usr/bin/env bash
# Builds (unless prebuilt binaries are in $BIN) and runs the MoE lab variants on a GPU host, the
# awkward check shapes first, then $SHAPES (default: the three shapes of issue 10). Tables go to
# stdout and $OUT/lab-*.txt. NCU=1 adds an ncu profile (clocks not locked, as issue 10 asks) of one
# launch of each variant's forward product on the Mixtral shape.
#   kernels/lab/moe/run-lab.sh                 # or, staged: BIN=. ./run-lab.sh
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${OUT:-/tmp/moe-lab}"
bin="${BIN:-$here/bin}"
src="${SRC:-$here}"
mkdir -p "$out" "$bin"
export CUBLAS_LIB="${CUBLAS_LIB:-$(find / -xdev -name 'libcublas.so.1[23]*' 2>/dev/null | head -1)}"
build() {
  local name=$1
  shift
  [ -x "$bin/$name" ] && return
  nvcc -O3 -std=c++17 -gencode arch=compute_90a,code=sm_90a -lineinfo -Xptxas -v "$@" \
    -o "$bin/$name" "$src/moe_lab.cu" -ldl > "$out/build-$name.log" 2>&1 || echo "build $name failed"
}
build moe_lab &
build moe_lab_bk64 -DMM_BK=64 -DMM_STAGES=3 &
build moe_lab_wg -DMOE_LAB_WGMMA &
wait
shapes="${SHAPES:-16384 4096 14336 8 2 16384 4096 1792 64 16 16384 1024 3584 8 2}"
for b in moe_lab moe_lab_bk64 moe_lab_wg; do
  [ -x "$bin/$b" ] || continue
  # shellcheck disable=SC2086
  timeout "${LAB_TIMEOUT:-120}" "$bin/$b" 1000 136 264 7 3 517 264 136 5 1 $shapes 2>&1 | tee "$out/lab-$b.txt"
done
if [ "${NCU:-0}" = 1 ] && command -v ncu > /dev/null; then
  for k in scatter2scatter_bf16_kernel2 scatter2scatter_wgmma_n256_kernel3; do
    timeout 240 ncu --clock-control none --kernel-name "$k" --launch-skip 2 --launch-count 1 \
      --section SpeedOfLight --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis \
      --section WarpStateStats --section Occupancy \
      "$bin/moe_lab_wg" 16384 4096 14336 8 2 > "$out/ncu-$k.txt" 2>&1
    grep -E "Duration|Compute \(SM\) Throughput|Memory Throughput|Achieved Occupancy|Stall" \
      "$out/ncu-$k.txt" | head -12
  done
fi
