#!/usr/bin/env bash
# Session 47's second device call (the first was `KERNELS=auto,v51,v50,v46,v47 run-call-s43.sh 500`,
# whose bench ran out of time before v46): with `v46-v50-combined.patch` applied and staged as
# run-call-s43.sh says, from the repository root: .device/main/run-call-s47.sh SECONDS.
# 1) MoeLayerBench of auto, v46, v47 with the dW += breakdown on Mixtral and 1.5B (variants 46
# and 47: 32 / 16 gathered rows a tile by TMA); 2) Nsight Compute's warp-state sampling per SASS
# instruction (ncu-source.sh, --clock-control none) of one launch of variant 51's dX2 on 1.5B,
# the overlapped-epilogue kernel, then of auto's (kernel25), each only where the time left allows
# (NCU_JOBS: "FAMILY KERNEL-REGEX;..." instead; NCU_SHAPE the shape, default 1.5B's). Needs
# ncu-source.sh, ncu_source_summary.py, moe-breakdown.sh and clock_stretches.py beside it
# (scripts/device/stage.sh stages them). On the build alone (no patch), for example the H200
# standing on the three shapes and ncu of auto's SwiGLU kernels:
#   KERNELS=auto BENCH_ARGS="16384 4096 14336 8 2 16384 4096 1792 64 16 16384 1024 3584 8 2" \
#     NCU_JOBS="auto ng_glubwd_kernel25;auto tg_glu_kernel15" run-call-s47.sh 450
cd "$(dirname "$0")"
export OUT="${OUT:-/tmp/moetune-out}"
LIMIT=${1:-450}
NCU_SHAPE="${NCU_SHAPE:-16384 1024 3584 8 2}"
mkdir -p "$OUT"
echo "## bench ${KERNELS:-auto,v46,v47} (limit ${BENCH_LIMIT:-240} s)"
BENCH_ARGS="${BENCH_ARGS-16384 4096 14336 8 2 16384 1024 3584 8 2}" MOE_BENCH_KERNELS=${KERNELS:-auto,v46,v47} \
  BENCH_LIMIT=${BENCH_LIMIT:-240} CLOCKS=1 MOE_BENCH_BREAKDOWN=1 ./moe-breakdown.sh > "$OUT/bench.txt" 2>&1
grep -E "MOETUNE|bench exit|^([0-9:.]+ )?\| (16384|scatter2scatter|groupXtY|\*\*|layer|dense)" "$OUT/bench.txt" | cut -c1-200 | tail -60
IFS=';' read -ra jobs <<< "${NCU_JOBS:-v51 glubwd_ew3_kernel51;auto ng_glubwd_kernel25}"
for job in "${jobs[@]}"; do
  set -- $job
  left=$((LIMIT - SECONDS - 10))
  [ $left -lt 60 ] && { echo "## ncu $1: no time left (${left} s)"; continue; }
  l=$left; [ $l -gt 100 ] && l=100
  echo "## ncu $1 $2 on $NCU_SHAPE (limit ${l} s)"
  OUT="$OUT/ncu-$1-$2" FAMILY=$1 KREGEX=$2 LIMIT=$l SHAPES="$NCU_SHAPE" ./ncu-source.sh 2>&1 | cut -c1-180 | head -60
done
echo "## done (${SECONDS} s)"
