#!/usr/bin/env bash
# Runs sdpa_probe (built here, see its header) on a GPU host against the cuDNN that PyTorch ships,
# then tools/bench_sdpa.py on the same shapes for the reference in the same call.
#   cp kernels/lab/cudnn/run-probe.sh .device/cudnn/ && (build sdpa_probe into .device/cudnn)
#   device: cd .device/cudnn && ./run-probe.sh        carry [".device/cudnn"]
set -uo pipefail
cd "$(dirname "$0")"
repo="$(cd ../.. && pwd)"
lib="$(python3 - <<'PY'
import glob, os
cands = []
try:
    import nvidia.cudnn as n
    cands += glob.glob(os.path.join(list(n.__path__)[0], "lib", "libcudnn.so.9*"))
except Exception:
    pass
import torch
cands += glob.glob(os.path.join(os.path.dirname(torch.__file__), "lib", "libcudnn.so.9*"))
print(sorted(cands)[0] if cands else "")
PY
)"
if [ -z "$lib" ]; then echo "no libcudnn.so.9 next to PyTorch"; exit 3; fi
# cuDNN's runtime-compiled engines need NVRTC: PyTorch's wheel folders, then the CUDA toolkit's
extra="$(python3 -c 'import glob,os,torch; r=os.path.dirname(os.path.dirname(torch.__file__)); print(":".join(sorted(set(os.path.dirname(p) for p in glob.glob(r+"/nvidia/*/lib/libnvrtc.so*")))))' 2>/dev/null)"
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do [ -d "$d" ] && extra="$extra:$d"; done
export LD_LIBRARY_PATH="$(dirname "$lib"):$extra:${LD_LIBRARY_PATH:-}"
echo "cuDNN library: $lib"
echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
ls "$(dirname "$lib")"
timeout "${PROBE_TIMEOUT:-120}" ./sdpa_probe "$lib"
echo "probe exit $?"
timeout 120 python3 "$repo/tools/bench_sdpa.py" --seq 2048,4096 --head-dim 128,64 --backend default,cudnn,flash \
  2>&1 | grep -v RESULT
