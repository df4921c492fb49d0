# Shared start of the lab's device calls (sourced by run-call*.sh from the staged folder, copied
# beside them): strict mode, the results folder R, cuBLAS for the lab's dense reference, the step
# marker T and the process-group time limit.
set -uo pipefail
R="${OUT:-/tmp/moe-out}"; mkdir -p "$R"
export CUBLAS_LIB="$(find / -xdev -name 'libcublas.so.1[23]*' 2>/dev/null | head -1)"
# unpack NAME: the lab binary NAME.xz staged beside the script to /tmp/NAME
unpack() { xz -dc "$1.xz" > "/tmp/$1" && chmod +x "/tmp/$1"; }
T() { echo "== $1 $(date +%T)"; }
# limit SECONDS CMD...: runs CMD in its own process group and kills the whole group at the limit
# (timeout alone killed run-gpu-tests.sh but left its JVM, hung on a kernel, holding the GPU)
limit() {
  local t=$1; shift
  setsid "$@" & local p=$!
  ( sleep "$t"; kill -KILL -- -"$p" 2> /dev/null ) & local w=$!
  wait "$p"; local rc=$?
  kill "$w" 2> /dev/null
  return $rc
}
