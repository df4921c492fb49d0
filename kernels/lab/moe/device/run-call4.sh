#!/usr/bin/env bash
# moe2 helper, the one device call of the 2026-12-02 evening session (staged with stage.sh into
# .device/moe2, the lab binary beside it as moe_lab_ws.xz, built with -DMOE_LAB_WS -DNDEBUG):
# variant 5's per-product time against cuBLAS (issue 10's first step), variant 7 (dW by
# red.global), variant 9 (2-CTA clusters, weight tile by TMA multicast), sanitizers and ncu of the
# variant-5/7/9 kernels, then the Java path. In order of what matters most if time runs out:
#  1. SASS counts of the lab binary (function HGMMA UTMALDG LDGSTS SYNCS LDL/STL RED)
#  2. the lab check on awkward shapes (v5..v8, then v9 alone: a hang there costs 20 s, not v5..v8)
#  3. v5..v9 on the three issue shapes next to cuBLAS (per product; v9 only if its check passed)
#  4. MoeLayerBench: ws256 (auto) and ws256r in one run with dense cuBLAS
#  5. CudaMoeOpsTest (every family incl. WS256R) + MoeSassTest + MixtralModelGpuTest + LoraGpuTest,
#     MOETUNE_MOE_KERNEL=ws256r (one JVM)
#  6. compute-sanitizer memcheck + racecheck of v5..v9 on the awkward shapes (lab)
#  7. ncu (clocks not locked) of fwd1 (v5, v9, cuBLAS) and dW1 (v5, v7, cuBLAS), Mixtral shape
cd "$(dirname "$0")"
. ./preamble.sh
unpack moe_lab_ws
L=/tmp/moe_lab_ws
T sass
cuobjdump --dump-sass $L 2>/dev/null | awk '/Function :/{f=$NF} /HGMMA/{h[f]++} /UTMALDG/{u[f]++} /LDGSTS/{l[f]++} /SYNCS/{s[f]++} /[^A-Z](LDL|STL)[^A-Z]/{x[f]++} /[^A-Z]REDG?\./{r[f]++} END{for(k in h) print k, h[k], u[k]+0, l[k]+0, s[k]+0, x[k]+0, r[k]+0}' | sort > "$R/sass.txt"
echo "function HGMMA UTMALDG LDGSTS SYNCS LDL/STL RED"; grep -E "kernel5|kernel7" "$R/sass.txt"
cuobjdump --dump-sass $L 2>/dev/null | grep -E "[^A-Z]REDG?\." | sort | uniq -c | sort -rn | head -3
T small
MOE_LAB_FIRST=5 MOE_LAB_LAST=8 limit 30 $L 1000 136 264 7 3 517 264 136 5 1 > "$R/lab-small.txt" 2>&1
rc=$?; echo "small rc $rc"; grep -E "FAIL|sample|rror" "$R/lab-small.txt" | cut -c1-200 | head
MOE_LAB_FIRST=9 limit 30 $L 1000 136 264 7 3 517 264 136 5 1 > "$R/lab-small9.txt" 2>&1
rc9=$?; echo "small v9 rc $rc9"; grep -E "FAIL|sample|rror|v9:" "$R/lab-small9.txt" | cut -c1-200 | head
last=9; [ $rc9 = 0 ] && ! grep -q FAIL "$R/lab-small9.txt" || last=8
T big
MOE_LAB_FIRST=5 MOE_LAB_LAST=$last limit 80 $L 16384 4096 14336 8 2 16384 4096 1792 64 16 16384 1024 3584 8 2 > "$R/lab-big.txt" 2>&1
echo "big rc $?"; grep -E "FAIL|sample|rror|all six" "$R/lab-big.txt" | cut -c1-200
T bench
limit 90 env MOE_BENCH_V2=0 MOE_BENCH_KERNELS=ws256,ws256r SANITIZE=0 BENCH=1 SELECT="--select-class=moetune.engine.backend.cuda.MoeSassTest" \
  OUT=/tmp/mo2 ./run-gpu-tests.sh > "$R/bench.txt" 2>&1
echo "bench rc $?"; grep -E "MOETUNE_MOE|^\|" "$R/bench.txt" | head -20
T tests
limit 110 env MOETUNE_MOE_KERNEL=ws256r SANITIZE=0 BENCH=0 SELECT="--select-class=moetune.engine.backend.cuda.CudaMoeOpsTest --select-class=moetune.engine.backend.cuda.MoeSassTest --select-class=moetune.engine.model.LoraGpuTest --select-class=moetune.engine.model.MixtralModelGpuTest" \
  OUT=/tmp/mo1 ./run-gpu-tests.sh > "$R/run-tests.txt" 2>&1
echo "tests rc $?"; sed 's/\x1b\[[0-9;]*m//g' "$R/run-tests.txt" | grep -E "✘|tests (successful|failed)|junit exit" | head -20
for tool in memcheck racecheck; do
  T $tool
  MOE_LAB_FIRST=5 MOE_LAB_LAST=$last MOE_LAB_DENSE=0 MOE_LAB_REPS=1 limit 45 compute-sanitizer --tool $tool \
    --print-limit 10 --error-exitcode 99 $L 1000 136 264 7 3 517 264 136 5 1 \
    > "$R/san-$tool.txt" 2>&1
  echo "$tool rc $?"; grep -E "SUMMARY|FAIL|Invalid|hazard" "$R/san-$tool.txt" | head -8
done
T ncu
# fwd1 and dW1 alone: v5 (check, warm-up, timed), v9 or v7 likewise, cuBLAS (warm-up, timed)
MOE_LAB_ONLY=fwd1,dW1 MOE_LAB_FIRST=5 MOE_LAB_LAST=$last MOE_LAB_REPS=1 limit 80 ncu --clock-control none \
  -k 'regex:ws256_|ws256mc_|nvjet|gemm|xmma' --launch-count 16 \
  --section SpeedOfLight --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis \
  --section WarpStateStats --print-details all \
  $L 16384 4096 14336 8 2 > "$R/ncu.txt" 2>&1
echo "ncu rc $?"; grep -E "^  [a-zA-Z_0-9]+.*\(|Duration|Compute \(SM\) Throughput|DRAM Throughput|Stall" "$R/ncu.txt" | head -30
T end
