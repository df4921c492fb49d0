#!/usr/bin/env bash
# One device call from the staged folder (scripts/device/stage.sh .device/NAME puts this script and
# moe-breakdown.sh there) for the MoE epilogue variants (10-15): the engine GPU suite
# (the bitwise fused-vs-unfused tests included), compute-sanitizer memcheck and racecheck on
# SANITIZE_SELECT (default the SwiGLU bitwise test), the sm_90a SASS opcodes of SASS_KERNELS
# (SASS=1), MoeLayerBench with the breakdown for the families in KERNELS (default ws256r, v10,
# auto) in one process, then ncu (clocks not locked) of the kernels matching NCU_REGEX for the
# families in NCU_KERNELS on the 1.5B shape. BUDGET caps the call (s); SELECT picks the tests,
# SANITIZE=0 skips the sanitizers, NCU=0 skips ncu, BENCH_ARGS the shapes (T D F E k ...), BENCH_S
# the bench's seconds (default 240).
set -uo pipefail
cd "$(dirname "$0")"
OUT="${OUT:-/tmp/moetune-out}"; mkdir -p "$OUT" /tmp/mt
BUDGET="${BUDGET:-560}"
cap() { local left=$((BUDGET - SECONDS - 10)); [ "$left" -lt 5 ] && left=5; [ "$1" -lt "$left" ] && echo "$1" || echo "$left"; }
if [[ " ${SKIP:-} " != *" tests "* ]]; then
  SANITIZE="${SANITIZE:-1}" SANITIZE_TIMEOUT=100 \
    SANITIZE_SELECT="${SANITIZE_SELECT:---select-method=moetune.engine.backend.cuda.CudaMoeOpsTest#swigluEpiloguesAreTheUnfusedOpsBitForBit}" \
    SELECT="${SELECT:---select-package=moetune.engine}" timeout -k 5 "$(cap 300)" ./run-gpu-tests.sh \
    > "$OUT/gpu-tests.log" 2>&1
  echo "gpu tests exit $?"
  grep -E "tests (found|successful|failed|aborted)|junit exit" "$OUT/gpu-tests.log" | sort -u
  grep -A3 "✘" "$OUT/gpu-tests.log" | cut -c1-240 | head -20
  grep -hE "ERROR SUMMARY|RACECHECK SUMMARY" "$OUT"/sanitizer-*.log
fi
if [ "${SASS:-0}" = 1 ] && command -v cuobjdump >/dev/null; then
  python3 -c 'import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read("moetune/kernels/moetune.fatbin"))' \
    lib/kernels-*.jar > /tmp/mt/mt.fatbin
  for k in ${SASS_KERNELS:-scatter2scatter_ws256_tg_glu_kernel11 scatter2scatter_ws256_ng_glubwd_kernel13 group_xty_ws256_tmar_kernel14}; do
    echo "$k: $(cuobjdump -sass -fun "$k" -arch sm_90a /tmp/mt/mt.fatbin \
      | grep -oE '\b(U[A-Z]{4,}|CCTL|PREFETCH|LDGSTS)[A-Z0-9._]*' | sort | uniq -c | tr -s ' \n' ' ')"
  done
fi
MOE_BENCH_KERNELS="${KERNELS:-ws256r,v10,auto}" BENCH_LIMIT="$(cap "${BENCH_S:-240}")" ./moe-breakdown.sh > "$OUT/bench.txt" 2>&1
grep -vE "^\| (group|combine|router|flatten|---)" "$OUT/bench.txt" | tail -110
. ./java-env.sh
for fam in ${NCU_KERNELS:-ws256r auto}; do
  [ "${NCU:-1}" = 1 ] && command -v ncu >/dev/null && [ "$(cap 70)" -gt 40 ] || break
  MOE_BENCH_V2=0 MOE_BENCH_KERNELS=$fam timeout -k 5 "$(cap 70)" ncu --clock-control none \
    -k "regex:${NCU_REGEX:-ws256_tg_kernel5|ws256_nc_kernel5|kernel1[01]}" --launch-skip 3 --launch-count 6 \
    --section SpeedOfLight --section WarpStateStats --print-details all \
    "$java" "${jopts[@]}" -Xmx16g -cp "$cp" moetune.engine.backend.cuda.MoeLayerBench \
    16384 1024 3584 8 2 > "$OUT/ncu-$fam.txt" 2>&1
  echo "ncu $fam exit $?"
  grep -E "^  [a-zA-Z_0-9]+.*\(|Duration|Compute \(SM\) Throughput|DRAM Throughput|Stall (Long|Barrier|Wait|LG|MIO|Math)" "$OUT/ncu-$fam.txt" | head -48
done
