# Sourced by the run-attn*.sh device calls, from the staged folder (copy it there beside them;
# java-env.sh, which they source too, is stage.sh's):
#   el TEXT               echo TEXT after the seconds since sourcing
#   ratio_table TIME SDPA the markdown table of a harness timing log (`./harness time` or `diag`)
#                         with SDPA's TFLOP/s from bench_sdpa.py's RESULT lines and the ratios
t0=$(date +%s)
el() { echo "[$(( $(date +%s) - t0 )) s] $*"; }
ratio_table() {
  python3 - "$1" "$2" <<'PY'
import json, sys
sd = {}
for line in open(sys.argv[2]):
    if line.startswith("RESULT "):
        r = json.loads(line[7:]); sd[(r["seq"], r["head_dim"])] = r
print("| variants | T | hd | fwd ms | bwd ms | fwd TFLOP/s | bwd TFLOP/s | SDPA fwd / bwd | ratio fwd / bwd |")
print("|---|---|---|---|---|---|---|---|---|")
for line in open(sys.argv[1]):
    c = [x.strip() for x in line.strip().strip("|").split("|")]
    if len(c) != 8 or not c[1].isdigit(): continue
    T, hd = int(c[1]), int(c[2]); r = sd.get((T, hd))
    ref = f"{r['fwd_tflops']:.1f} / {r['bwd_tflops']:.1f}" if r else "-"
    rat = f"{float(c[6]) / r['fwd_tflops']:.2f} / {float(c[7]) / r['bwd_tflops']:.2f}" if r else "-"
    print(f"| {c[0]} | {T} | {hd} | {c[4]} | {c[5]} | {c[6]} | {c[7]} | {ref} | {rat} |")
PY
}
