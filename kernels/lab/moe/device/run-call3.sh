#!/usr/bin/env bash
# moe helper, the device call of the 2026-12-02 afternoon session (run once at 17:19 UTC with the
# deadlocking first build; kept for the rerun of the fixed one) (staged with stage.sh into
# .device/moe, the lab binary beside it as moe_lab_ws.xz): variants 5 / 6 (warp-specialised, TMA,
# mbarrier stages) in the lab, then the Java path. In order of what matters most if time runs out:
#  1. SASS counts of the lab binary (function HGMMA UTMALDG LDGSTS SYNCS)
#  2. the lab check on awkward shapes (25 s: a deadlock stops here and drops v5/v6 below)
#  3. variants 2..6 on the three issue shapes next to cuBLAS
#  4. CudaMoeOpsTest (every family, WS256 / WS128 with MOETUNE_TEST_WS=1) + MoeSassTest (UTMALDG)
#  5. MoeLayerBench: auto, ws256, ws128 in one run with dense cuBLAS
#  6. compute-sanitizer memcheck + racecheck of v5 / v6 on the awkward shapes (lab)
#  7. ncu (clocks not locked) of the Mixtral fwd1 product: v3, v5, cuBLAS
#  8. LoraGpuTest + MixtralModelGpuTest with MOETUNE_MOE_KERNEL=ws256
cd "$(dirname "$0")"
. ./preamble.sh
unpack moe_lab_ws
T sass
cuobjdump --dump-sass /tmp/moe_lab_ws 2>/dev/null | awk '/Function :/{f=$NF} /HGMMA/{h[f]++} /UTMALDG/{u[f]++} /LDGSTS/{l[f]++} /SYNCS/{s[f]++} /LDL|STL/{x[f]++} END{for(k in h) print k, h[k], u[k]+0, l[k]+0, s[k]+0, x[k]+0}' | sort > "$R/sass.txt"
grep -E "kernel5|kernel3" "$R/sass.txt"
T small
MOE_LAB_FIRST=2 timeout 25 /tmp/moe_lab_ws 1000 136 264 7 3 517 264 136 5 1 > "$R/lab-small.txt" 2>&1
rc=$?; echo "small rc $rc"; grep -E "FAIL|sample|rror|all six" "$R/lab-small.txt" | cut -c1-200
last=6; [ $rc = 0 ] || last=4
T "big v2..v$last"
MOE_LAB_FIRST=2 MOE_LAB_LAST=$last timeout 80 /tmp/moe_lab_ws 16384 4096 14336 8 2 16384 4096 1792 64 16 16384 1024 3584 8 2 > "$R/lab-big.txt" 2>&1
echo "big rc $?"; grep -E "FAIL|sample|rror|all six" "$R/lab-big.txt" | cut -c1-200
T ops
limit 90 env MOETUNE_TEST_WS=1 SANITIZE=0 BENCH=0 SELECT="--select-class=moetune.engine.backend.cuda.CudaMoeOpsTest --select-class=moetune.engine.backend.cuda.MoeSassTest" \
  OUT=/tmp/mo1 ./run-gpu-tests.sh > "$R/run-ops.txt" 2>&1
echo "ops rc $?"; sed 's/\x1b\[[0-9;]*m//g' "$R/run-ops.txt" | grep -E "✘|tests (successful|failed)|junit exit" | head -20
T bench
limit 100 env MOE_BENCH_KERNELS=auto,ws256,ws128 SANITIZE=0 BENCH=1 SELECT="--select-class=moetune.engine.backend.cuda.MoeSassTest" \
  OUT=/tmp/mo2 ./run-gpu-tests.sh > "$R/bench.txt" 2>&1
echo "bench rc $?"; grep -E "MOETUNE_MOE|^\|" "$R/bench.txt" | head -20
if [ $rc = 0 ]; then
  for tool in memcheck racecheck; do
    T $tool
    MOE_LAB_FIRST=5 MOE_LAB_DENSE=0 MOE_LAB_REPS=1 timeout 40 compute-sanitizer --tool $tool \
      --print-limit 10 --error-exitcode 99 /tmp/moe_lab_ws 1000 136 264 7 3 517 264 136 5 1 \
      > /tmp/san-$tool.txt 2>&1
    echo "$tool rc $?" | tee -a "$R/sanitizer.txt"; grep -E "SUMMARY|FAIL|Invalid|hazard" /tmp/san-$tool.txt | head -8 | tee -a "$R/sanitizer.txt"
  done
  T ncu
  MOE_LAB_FIRST=3 MOE_LAB_LAST=5 MOE_LAB_REPS=1 timeout 45 ncu --clock-control none \
    -k 'regex:scatter2scatter_wgmma_n256|scatter2scatter_ws256|gemm|nvjet|xmma' --launch-count 6 \
    --section SpeedOfLight --section WarpStateStats \
    /tmp/moe_lab_ws 16384 4096 14336 8 2 > "$R/ncu.txt" 2>&1
  echo "ncu rc $?"; grep -E "^  [a-zA-Z_0-9]+.*\(|Duration|Compute \(SM\) Throughput|Memory Throughput|Warp Cycles Per Issued" "$R/ncu.txt" | head -40
fi
T model
limit 150 env MOETUNE_MOE_KERNEL=ws256 SANITIZE=0 BENCH=0 SELECT="--select-class=moetune.engine.model.LoraGpuTest --select-class=moetune.engine.model.MixtralModelGpuTest" \
  OUT=/tmp/mo3 ./run-gpu-tests.sh > "$R/run-model.txt" 2>&1
echo "model rc $?"; sed 's/\x1b\[[0-9;]*m//g' "$R/run-model.txt" | grep -E "✘|tests (successful|failed)|junit exit" | head -20
T end
