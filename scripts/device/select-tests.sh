# Sourced (". ./select-tests.sh") by the session call scripts (kernels/lab/moe/device/run-call-*.sh)
# from the staged folder; needs OUT.
# select_tests NAME SECONDS SELECT [VAR=VALUE ...]: the GPU tests SELECT picks, by run-gpu-tests.sh
# without its sanitizers and with the given environment, into $OUT/NAME (plain.log without colour
# codes); prints their summary and the first failures.
select_tests() {
  local name=$1 secs=$2 sel=$3
  shift 3
  mkdir -p "$OUT/$name"
  env "$@" OUT="$OUT/$name" SANITIZE=0 SELECT="$sel" timeout -k 5 "$secs" ./run-gpu-tests.sh \
    > "$OUT/$name/run.log" 2>&1
  sed 's/\x1b\[[0-9;]*m//g' "$OUT/$name/tests.log" > "$OUT/$name/plain.log"
  echo "## $name (${SECONDS} s)"
  grep -E "tests (found|successful|failed|aborted|skipped)|✘" "$OUT/$name/plain.log" | head -20
  grep -A6 "✘" "$OUT/$name/plain.log" | cut -c1-300 | head -40
}
# passed NAME: whether select_tests NAME ran tests and none failed
passed() {
  grep -qE "\[ +[1-9][0-9]* tests successful" "$OUT/$1/plain.log" && ! grep -q "✘" "$OUT/$1/plain.log"
}
# bench_moe FAMILIES SECONDS: MoeLayerBench of the kernel families (e.g. auto,v57) on BENCH_ARGS
# (default: Mixtral, then 1.5B) with the per-op breakdown and the clock log, into $OUT/bench.txt;
# prints its table lines
bench_moe() {
  echo "## bench $1 (limit $2 s)"
  BENCH_ARGS="${BENCH_ARGS-16384 4096 14336 8 2 16384 1024 3584 8 2}" MOE_BENCH_KERNELS=$1 \
    BENCH_LIMIT=$2 CLOCKS=1 MOE_BENCH_BREAKDOWN=1 ./moe-breakdown.sh > "$OUT/bench.txt" 2>&1
  grep -E "MOETUNE|bench exit|^([0-9:.]+ )?\| (16384|scatter2scatter|groupXtY|group |groupGates|swigluFactorsBackwardBesideDw|combine|\*\*|layer|dense)" \
    "$OUT/bench.txt" | cut -c1-200 | tail -80
}
# sanitize_tests SECONDS SELECT: compute-sanitizer memcheck, then racecheck, on the GPU tests SELECT
# picks, each while SECONDS (counted from the caller's start) leave more than 25; their summaries
# and first hazards (whole reports: $OUT/sanitize-TOOL.log)
sanitize_tests() {
  local limit=$1 sel=$2 tool left
  . ./java-env.sh
  for tool in memcheck racecheck; do
    left=$((limit - SECONDS - 5))
    [ $left -gt 25 ] || break
    echo "## $tool (${SECONDS} s)"
    # (session 52 printed only the summary line and lost which kernel racecheck meant)
    timeout $left compute-sanitizer --tool $tool --print-limit 10 $java "${jopts[@]}" -jar $launcher \
      execute -cp "$cp" $sel --include-tag=gpu --details=summary --disable-banner \
      > "$OUT/sanitize-$tool.log" 2>&1
    grep -E "ERROR SUMMARY|RACECHECK SUMMARY|tests (successful|failed)" "$OUT/sanitize-$tool.log"
    grep -E -A4 "^========= (Error|Warning|Invalid|Race)" "$OUT/sanitize-$tool.log" | cut -c1-220 | head -40
  done
}
