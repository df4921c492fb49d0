#!/usr/bin/env python3
"""Times PyTorch's scaled_dot_product_attention: the reference of `moetune bench attention` and of
kernels/lab/attention. --backend picks SDPA's kernels: default (torch's own choice), flash
(FlashAttention-2), cudnn (cuDNN's fused attention), or several, comma-separated.

Causal, bf16, tensors laid out as moetune's (B*T, H, hd) viewed as (B, H, T, hd). The kv heads are
expanded to the query heads first (outside the timing; transformers' repeat_kv does the same), so
SDPA does exactly the FLOPs of a grouped-query attention. TFLOP/s counts causal FLOPs as half the
square and the backward as 2.5x the forward. Prints one `RESULT {json}` line per shape (parsed by
moetune) and a table.

Timing, the same as moetune's AttentionBench: after --warmup untimed samples, each of --reps
samples records a CUDA event, queues --calls back-to-back calls, records a second event and
synchronizes; a sample is the difference over --calls, the result the median sample. The forward
runs with autograd recording, as in training (it saves what the backward needs); the backward is
torch.autograd.grad(out, (q, k, v), dout, retain_graph=True) on one forward's graph, so every call
runs the same SDPA backward kernels without accumulating into .grad.

    python3 tools/bench_sdpa.py --seq 2048,4096,8192 --head-dim 128,64 --tokens 16384 \
        --heads 32 --kv-heads 8 --reps 20 --calls 10 --backend default,flash
"""

import argparse
import contextlib
import json
import statistics
import sys


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seq", default="2048,4096,8192")
    ap.add_argument("--head-dim", default="128,64")
    ap.add_argument("--tokens", type=int, default=16384, help="tokens per batch (B = tokens / T)")
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--kv-heads", type=int, default=8)
    ap.add_argument("--reps", type=int, default=20, help="timed samples (the median is reported)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed warm-up samples")
    ap.add_argument("--calls", type=int, default=10, help="back-to-back calls per sample")
    ap.add_argument("--backend", default="default,flash", help="default, flash, cudnn (comma-separated)")
    args = ap.parse_args()

    import torch
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    if not torch.cuda.is_available():
        print("bench_sdpa: no CUDA device", file=sys.stderr)
        return 2
    dev = torch.device("cuda")
    torch.manual_seed(0)
    rows = []
    for backend in args.backend.split(","):
        if backend == "default":
            ctx = contextlib.nullcontext
        elif backend in ("flash", "cudnn"):
            b = SDPBackend.FLASH_ATTENTION if backend == "flash" else SDPBackend.CUDNN_ATTENTION
            ctx = lambda b=b: sdpa_kernel([b])
        else:
            print(f"bench_sdpa: --backend {backend} is not one of default, flash, cudnn", file=sys.stderr)
            return 2
        try:
            rows += run(args, backend, ctx, torch, F, dev)
        except RuntimeError as e:
            print(f"bench_sdpa: backend {backend} failed: {str(e).splitlines()[0]}", file=sys.stderr)
    print(f"\nSDPA, torch {torch.__version__}, {torch.cuda.get_device_name()}")
    print("| backend | T | hd | B | fwd ms | bwd ms | fwd TFLOP/s | bwd TFLOP/s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['backend']} | {r['seq']} | {r['head_dim']} | {r['batch']} | {r['fwd_ms']:.3f} | {r['bwd_ms']:.3f} "
              f"| {r['fwd_tflops']:.1f} | {r['bwd_tflops']:.1f} |")
    return 0


def run(args, backend, ctx, torch, F, dev):
    rows = []
    for hd in [int(x) for x in args.head_dim.split(",")]:
        for T in [int(x) for x in args.seq.split(",")]:
            B, H, Hkv = max(1, args.tokens // T), args.heads, args.kv_heads

            def make(heads):
                x = torch.randn(B * T, heads, hd, device=dev, dtype=torch.bfloat16)
                return x.view(B, T, heads, hd).transpose(1, 2)

            q, k, v = make(H), make(Hkv), make(Hkv)
            k = k.repeat_interleave(H // Hkv, dim=1).detach().requires_grad_()
            v = v.repeat_interleave(H // Hkv, dim=1).detach().requires_grad_()
            q = q.detach().requires_grad_()
            dout = torch.randn_like(q)
            fwd, bwd = [], []
            n = args.calls

            def timed(work):
                e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                e0.record()
                for _ in range(n):
                    work()
                e1.record()
                e1.synchronize()
                return e0.elapsed_time(e1) / n

            with ctx():
                out = F.scaled_dot_product_attention(q, k, v, is_causal=True)

                def forward():
                    F.scaled_dot_product_attention(q, k, v, is_causal=True)

                def backward():
                    torch.autograd.grad(out, (q, k, v), dout, retain_graph=True)

                for r in range(args.warmup + args.reps):
                    tf = timed(forward)
                    tb = timed(backward)
                    if r >= args.warmup:
                        fwd.append(tf)
                        bwd.append(tb)
            flop = 4.0 * B * H * T * T * hd / 2
            mf, mb = statistics.median(fwd), statistics.median(bwd)
            row = {
                "backend": backend, "seq": T, "head_dim": hd, "batch": B, "heads": H, "kv_heads": Hkv,
                "fwd_ms": mf, "bwd_ms": mb,
                "fwd_spread_ms": max(fwd) - min(fwd), "bwd_spread_ms": max(bwd) - min(bwd),
                "fwd_tflops": flop / mf / 1e9, "bwd_tflops": 2.5 * flop / mb / 1e9,
                "calls": n, "torch": torch.__version__,
            }
            rows.append(row)
            print("RESULT " + json.dumps(row), flush=True)
            del q, k, v, dout, out
            torch.cuda.empty_cache()
    return rows


if __name__ == "__main__":
    sys.exit(main())
