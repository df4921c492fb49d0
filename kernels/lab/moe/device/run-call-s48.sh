#!/usr/bin/env bash
# Session 48's device call: variants 52 and 53 (the float32 dW with 32-row k steps and the whole
# tile staged, so its TMA reductions drain under the next tile's main loop; 53 adds L2 prefetches
# eight steps ahead), as the opt-in families v52 / v53 (measured on an H100, both slower, out of
# the build since: `git apply kernels/lab/moe/v52-v53-dw-bk32-full-staging.patch` first). Staging:
# scripts/device/stage.sh .device/main, cp this file into .device/main/, then on the device from
# the repository root: .device/main/run-call-s48.sh SECONDS (what the call may take; env
# BENCH_ARGS, KERNELS, BENCH_CAP).
# 1) the dW bitwise tests (V52 and V53 against variant 42 from the same dW; written and added),
# MoeSassTest and MoeKernelChoiceTest in a JVM of their own, then compute-sanitizer memcheck and
# racecheck on the dW bitwise test; 2) MoeLayerBench of auto, v52, v53 (auto alone if the precheck
# failed) with the dW += breakdown on Mixtral and 1.5B; 3) SASS opcodes of kernels 42, 52, 53.
cd "$(dirname "$0")"
export OUT="${OUT:-/tmp/moetune-out}"
LIMIT=${1:-480}
T=moetune.engine.backend.cuda.CudaMoeOpsTest
mkdir -p "$OUT/pre"
OUT="$OUT/pre" SANITIZE=1 SANITIZE_TOOLS="memcheck racecheck" SANITIZE_TIMEOUT=80 \
  SELECT="--select-method=$T#groupXtYTmaReductionIsTheRedEpilogueBitForBit --select-method=$T#groupXtYWrittenIsTheAdditionIntoZerosBitForBit --select-class=moetune.engine.backend.cuda.MoeSassTest --select-class=moetune.engine.backend.cuda.MoeKernelChoiceTest" \
  SANITIZE_SELECT="--select-method=$T#groupXtYTmaReductionIsTheRedEpilogueBitForBit" \
  timeout -k 5 230 ./run-gpu-tests.sh > "$OUT/pre/run.log" 2>&1
sed 's/\x1b\[[0-9;]*m//g' "$OUT/pre/tests.log" > "$OUT/pre/plain.log"
echo "## precheck (${SECONDS} s)"; grep -E "tests (found|successful|failed|aborted)|✘" "$OUT/pre/plain.log" | head -20
grep -A6 "✘" "$OUT/pre/plain.log" | cut -c1-300 | head -30
grep -hE "ERROR SUMMARY|RACECHECK SUMMARY|tests (successful|failed)" "$OUT"/pre/sanitizer-*.log 2>/dev/null
if grep -qE "\[ +0 tests failed" "$OUT/pre/plain.log" && grep -qE "\[ +[1-9][0-9]* tests successful" "$OUT/pre/plain.log" \
  && ! grep -q "✘" "$OUT/pre/plain.log"; then
  K=${KERNELS:-auto,v52,v53}
else K=auto; fi
left=$((LIMIT - SECONDS - 20)); bl=$left; [ $bl -gt ${BENCH_CAP:-300} ] && bl=${BENCH_CAP:-300}
echo "## bench $K (limit ${bl} s)"
BENCH_ARGS="${BENCH_ARGS-16384 4096 14336 8 2 16384 1024 3584 8 2}" MOE_BENCH_KERNELS=$K BENCH_LIMIT=$bl CLOCKS=1 MOE_BENCH_BREAKDOWN=1 ./moe-breakdown.sh > "$OUT/bench.txt" 2>&1
grep -E "MOETUNE|bench exit|stretch|^([0-9:.]+ )?\| (16384|scatter2scatter|groupXtY|\*\*|layer|dense)" "$OUT/bench.txt" | cut -c1-230 | tail -90
if command -v cuobjdump >/dev/null && [ $((LIMIT - SECONDS)) -gt 10 ]; then
  python3 -c 'import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read("moetune/kernels/moetune.fatbin"))' lib/kernels-*.jar > /tmp/mt.fatbin
  for k in group_xty_ws256_tmar_mc_kernel42 group_xty_ws256_tmar_mc_bk32_kernel52 group_xty_ws256_tmar_mc_bk32_pf_kernel53; do
    echo "$k: $(cuobjdump -sass -fun "$k" -arch sm_90a /tmp/mt.fatbin | grep -oE '\b(HGMMA|U[A-Z]{4,}|LDGSTS|LDL|STL|BPT)[A-Z0-9._]*' | sort | uniq -c | tr -s ' \n' ' ')"
  done
fi
echo "## done (${SECONDS} s)"
