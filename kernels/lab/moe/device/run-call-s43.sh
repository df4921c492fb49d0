#!/usr/bin/env bash
# Session 43's device call (variant 51 and the full-rows sanitizer run added after its first run,
# which was `KERNELS=auto,v50 run-call-s43.sh 290`). To run it: `git apply kernels/lab/moe/v46-v50-combined.patch` (on 8292627,
# where variant 48 is in the build, and later),
# scripts/device/stage.sh .device/main, cp this file into .device/main/, then on the device from
# the repository root: .device/main/run-call-s43.sh SECONDS (what the call may take; env BENCH_ARGS,
# BD, BENCH_PCT, KERNELS).
# Variants 49 (dX2's epilogue on warpgroups of its own), 50 (the first product's epilogue on
# warpgroups of its own; family v50 = v49 + kernel50), 51 (v49 with three stages and double-buffered
# epilogue loads), 46 and 47 (32 / 16 gathered rows a tile by TMA); 48 (dW written) is in the build.
# 1) the SwiGLU bitwise tests (V49, V46, V47, V51, V50 last in them) and the written-dW test in a JVM
# of their own (a failed launch would poison the context); 2) MoeLayerBench of auto, v50, v51, v46,
# v47 (v49, v46, v47 if only V50 / V51 failed; auto alone if anything else failed) with the dW += breakdown
# (BD=both: the written one too); 3) the GPU suite (run-gpu-tests' default) with memcheck and
# racecheck on the SwiGLU tests over full and over few rows (the new kernels' TMA and thread paths); 4) SASS opcodes of the new kernels.
cd "$(dirname "$0")"
export OUT="${OUT:-/tmp/moetune-out}"
LIMIT=${1:-588}
T=moetune.engine.backend.cuda.CudaMoeOpsTest
mkdir -p "$OUT/pre" "$OUT/suite"
OUT="$OUT/pre" SANITIZE=0 SELECT="--select-method=$T#swigluEpiloguesOverFewRowsAreTheUnfusedOpsBitForBit --select-method=$T#swigluEpiloguesAreTheUnfusedOpsBitForBit --select-method=$T#swigluEpiloguesOverLongerProductsAreTheUnfusedOpsBitForBit --select-method=$T#groupXtYWrittenIsTheAdditionIntoZerosBitForBit" \
  timeout -k 5 180 ./run-gpu-tests.sh > "$OUT/pre/run.log" 2>&1
sed 's/\x1b\[[0-9;]*m//g' "$OUT/pre/tests.log" > "$OUT/pre/plain.log"
echo "## precheck (${SECONDS} s)"; grep -E "tests (successful|failed|aborted)|✘|✔" "$OUT/pre/plain.log" | head -20
grep -A6 "✘" "$OUT/pre/plain.log" | cut -c1-300 | head -30
# the failures' messages: all about V50 / V51 (last in the families) drop those two
V50ONLY=$(python3 - "$OUT/pre/plain.log" <<'PY'
import sys
lines = open(sys.argv[1], errors="replace").read().splitlines()
fails = [i for i, l in enumerate(lines) if "\u2718" in l]
msgs = [" ".join(lines[i:i + 4]) for i in fails]
print(1 if fails and all(any(w in m for w in ("V50", "kernel50", "V51", "kernel51")) for m in msgs) else 0)
PY
)
if grep -q "4 tests successful" "$OUT/pre/plain.log"; then K=${KERNELS:-auto,v50,v51,v46,v47}
elif [ "$V50ONLY" = 1 ]; then K=${KERNELS:-auto,v49,v46,v47}; echo "V50 / V51 failed alone: v49 instead"
else K=auto; fi
left=$((LIMIT - SECONDS)); bl=$((left * ${BENCH_PCT:-70} / 100)); [ $bl -gt 240 ] && bl=240
echo "## bench $K (limit ${bl} s)"
BENCH_ARGS="${BENCH_ARGS-16384 4096 14336 8 2 16384 1024 3584 8 2}" MOE_BENCH_KERNELS=$K BENCH_LIMIT=$bl CLOCKS=1 MOE_BENCH_BREAKDOWN=${BD:-1} ./moe-breakdown.sh > "$OUT/bench.txt" 2>&1
grep -E "MOETUNE|bench exit|stretch|^([0-9:.]+ )?\| (16384|scatter2scatter|groupXtY|\*\*|layer|dense)" "$OUT/bench.txt" | cut -c1-230 | tail -90
left=$((LIMIT - SECONDS - 25)); [ $left -lt 30 ] && left=30
echo "## suite (limit ${left} s)"
OUT="$OUT/suite" SANITIZE_TOOLS="memcheck racecheck" SANITIZE_TIMEOUT=90 \
  SANITIZE_SELECT="--select-method=$T#swigluEpiloguesAreTheUnfusedOpsBitForBit --select-method=$T#swigluEpiloguesOverFewRowsAreTheUnfusedOpsBitForBit" \
  timeout -k 5 $left ./run-gpu-tests.sh > "$OUT/suite/run.log" 2>&1
echo "suite exit $?"
sed 's/\x1b\[[0-9;]*m//g' "$OUT/suite/tests.log" | grep -E "tests (found|successful|failed|aborted)" | sort -u
sed 's/\x1b\[[0-9;]*m//g' "$OUT/suite/tests.log" | grep -A4 "✘" | cut -c1-240 | head -20
grep -hE "ERROR SUMMARY|RACECHECK SUMMARY" "$OUT"/suite/sanitizer-*.log 2>/dev/null
if command -v cuobjdump >/dev/null && [ $((LIMIT - SECONDS)) -gt 15 ]; then
  python3 -c 'import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read("moetune/kernels/moetune.fatbin"))' lib/kernels-*.jar > /tmp/mt.fatbin
  for k in group_xty_ws256_tmar_mc_kernel42 scatter2scatter_ws192_ng_glubwd_ew_kernel49 scatter2scatter_ws192_tg_glu_ew_kernel50 scatter2scatter_ws192_ng_glubwd_ew3_kernel51 scatter2scatter_ws256_tg_glu_rt32_kernel46; do
    echo "$k: $(cuobjdump -sass -fun "$k" -arch sm_90a /tmp/mt.fatbin | grep -oE '\b(HGMMA|U[A-Z]{4,}|LDGSTS|LDL|STL|BPT)[A-Z0-9._]*' | sort | uniq -c | tr -s ' \n' ' ')"
  done
fi
echo "## done (${SECONDS} s)"
