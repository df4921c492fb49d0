#!/usr/bin/env bash
# Compiles src/main/cuda/*.cu into ONE fatbin (sm_80 and sm_90a machine code, compute_90 PTX
# for newer GPUs; the targets compile in parallel, --threads 0) at
# $1/moetune/kernels/moetune.fatbin, the kernels jar's resource. Run by Maven (generate-resources).
# Without nvcc the build goes on: it says so once, and the CUDA backend reports at run time that
# the kernels were not built.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out_dir="${1:?usage: build-kernels.sh OUTPUT_CLASSES_DIR}/moetune/kernels"
src="$here/src/main/cuda"
nvcc="${NVCC:-}"
if [ -z "$nvcc" ]; then
  nvcc="$(command -v nvcc || true)"
fi
if [ -z "$nvcc" ]; then
  for c in /usr/local/cuda/bin/nvcc /usr/local/cuda-*/bin/nvcc; do
    if [ -x "$c" ]; then nvcc="$c"; break; fi
  done
fi
if [ -z "$nvcc" ]; then
  echo "moetune kernels: nvcc not found (set NVCC or install the CUDA toolkit); the kernels were NOT built and the CUDA backend will say so"
  exit 0
fi
mkdir -p "$out_dir"
fatbin="$out_dir/moetune.fatbin"
# Rebuild only when a source is newer than the fatbin (keeps repeated builds fast on 2 cores).
if [ -f "$fatbin" ] && [ -z "$(find "$src" -newer "$fatbin" -type f)" ]; then
  exit 0
fi
echo "moetune kernels: $("$nvcc" --version | tail -1) -> $fatbin"
# --compress-mode none: nvcc 13's default compressed this fatbin once it grew past 13 MB
# (5.4 MB instead of 13.4), which hides the kernels' ELF sections from KernelSignaturesTest.
"$nvcc" -O3 -std=c++17 -fatbin -lineinfo --threads 0 --compress-mode none \
  -gencode arch=compute_80,code=sm_80 \
  -gencode arch=compute_90a,code=sm_90a \
  -gencode arch=compute_90,code=compute_90 \
  -o "$fatbin.tmp" "$src/moetune.cu"
mv "$fatbin.tmp" "$fatbin"
