#!/usr/bin/env bash
# Session 55's second device call, after run-call-s55.sh has timed variants 62-66: Nsight Compute
# (clocks not locked) on 1.5B's dX2 and fwd1 under kernel56 and each ping-pong variant, one launch
# each, with the memory sections: tensor-pipe and L2 throughput, the stall reasons per SASS
# instruction (ncu-source.sh). This shows whether a ping-pong kernel's main loop waits on L2 (the
# 64 x 256 tiles draw 80 bytes per SM cycle at the full rate) or on its stage ring. Stage, copy this
# file into .device/main/, then: .device/main/run-call-s55b.sh SECONDS. RUNS overrides the list
# (PINGPONG:KERNEL-REGEX pairs, space-separated).
cd "$(dirname "$0")"
export OUT="${OUT:-/tmp/moetune-out}"
LIMIT=${1:-540}
runs="${RUNS:-off:glubwd_fac_kernel56 v62:pp_kernel62 v65:pp_kernel65 v63:pp_kernel63 off:glu_fac_kernel56 v64:pp_kernel64 v66:pp_kernel66}"
for r in $runs; do
  left=$((LIMIT - SECONDS - 5))
  [ $left -gt 60 ] || { echo "## stopped before $r (${SECONDS} s)"; break; }
  echo "## $r (${SECONDS} s)"
  pp=${r%%:*}; k=${r#*:}
  mkdir -p "$OUT/ncu-$pp-$k"
  MOETUNE_MOE_PINGPONG=$pp OUT="$OUT/ncu-$pp-$k" SHAPES="16384 1024 3584 8 2" KREGEX="$k" MEM=1 \
    LIMIT=$((left < 100 ? left : 100)) ./ncu-source.sh 2>&1 | grep -E "ncu exit|Duration|Throughput|Eligible|Issued|Stall|Bank|Busy" | head -24
done
echo "## done (${SECONDS} s)"
