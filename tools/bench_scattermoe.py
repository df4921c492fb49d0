#!/usr/bin/env python3
"""Times a PyTorch MoE SwiGLU layer (the reference column of `moetune bench moe`).

The layer is ScatterMoE-shaped: top-k softmax routing, tokens sorted by expert once, both expert
products as one grouped GEMM each through `torch._grouped_mm` (PyTorch's CUTLASS grouped kernel
on sm_90), SwiGLU between them, the gate weighting and the scatter-add back to the tokens.
Forward+backward computes the input and both weight gradients. Where `_grouped_mm` is missing or
has no backward, the products fall back to a per-expert loop of `torch.mm` (labelled `loop`).

    python3 tools/bench_scattermoe.py --shape 16384,4096,14336,8,2 [--shape T,D,F,E,K ...]

For each shape prints one line `RESULT {json}` (tokens, hidden, ffn, experts, topk, impl,
fwd_ms, fwd_bwd_ms: medians over CUDA-event timings after a warm-up), then a readable line.
"""

import argparse
import json
import statistics
import sys


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", action="append", required=True, help="T,D,F,E,K")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--iters", type=int, default=3)
    args = ap.parse_args()
    try:
        import torch
        import torch.nn.functional as F
    except ImportError as e:
        print(f"bench_scattermoe: PyTorch not available ({e})", file=sys.stderr)
        return 2
    if not torch.cuda.is_available():
        print("bench_scattermoe: no CUDA device", file=sys.stderr)
        return 2
    dev = "cuda"

    def products(impl, xs, w, offs, counts):
        if impl == "grouped_mm":
            return torch._grouped_mm(xs, w, offs=offs)
        outs, start = [], 0
        for e, n in enumerate(counts.tolist()):
            outs.append(xs[start:start + n] @ w[e])
            start += n
        return torch.cat(outs)

    def layer(impl, x, logits, w13, w2, k):
        probs = logits.float().softmax(-1)
        topw, topi = probs.topk(k, dim=-1)
        topw = topw / topw.sum(-1, keepdim=True)
        flat = topi.reshape(-1)
        order = flat.argsort(stable=True)
        counts = torch.bincount(flat, minlength=w13.shape[0])
        offs = counts.cumsum(0).to(torch.int32)
        tok = order // k
        h = products(impl, x.index_select(0, tok), w13, offs, counts)  # (M, 2F) grouped
        g, u = h.chunk(2, dim=-1)
        ye = products(impl, F.silu(g) * u, w2, offs, counts)  # (M, D) grouped
        ye = ye * topw.reshape(-1)[order].unsqueeze(-1).to(ye.dtype)
        return torch.zeros_like(x).index_add_(0, tok, ye)

    def timed(fn, repeats, iters):
        fn()
        torch.cuda.synchronize()
        ms = []
        for _ in range(repeats):
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            for _ in range(iters):
                fn()
            b.record()
            b.synchronize()
            ms.append(a.elapsed_time(b) / iters)
        return statistics.median(ms)

    for spec in args.shape:
        t, d, f, e, k = (int(v) for v in spec.split(","))
        torch.manual_seed(0)
        bf = torch.bfloat16
        x = torch.randn(t, d, device=dev, dtype=bf, requires_grad=True)
        logits = torch.randn(t, e, device=dev, dtype=torch.float32)
        # (E, D, 2F) and (E, F, D): the (K, N) operand layout _grouped_mm takes
        w13 = (torch.randn(e, d, 2 * f, device=dev, dtype=bf) * 0.02).requires_grad_()
        w2 = (torch.randn(e, f, d, device=dev, dtype=bf) * 0.02).requires_grad_()
        dy = torch.randn(t, d, device=dev, dtype=bf)
        impl = "grouped_mm" if hasattr(torch, "_grouped_mm") else "loop"

        def fwd():
            with torch.no_grad():
                layer(impl, x, logits, w13, w2, k)

        def fwd_bwd():
            layer(impl, x, logits, w13, w2, k).backward(dy)

        try:
            fwd_bwd()
        except Exception as ex:  # no grouped kernel or backward for it on this build
            print(f"bench_scattermoe: torch._grouped_mm failed ({ex}); per-expert loop instead", file=sys.stderr)
            impl = "loop"
        fwd_ms = timed(fwd, args.repeats, args.iters)
        fwd_bwd_ms = timed(fwd_bwd, args.repeats, args.iters)
        res = dict(tokens=t, hidden=d, ffn=f, experts=e, topk=k, impl=impl, fwd_ms=fwd_ms, fwd_bwd_ms=fwd_bwd_ms)
        print("RESULT " + json.dumps(res), flush=True)
        print(f"torch ({impl}) T={t} D={d} F={f} E={e} k={k}: fwd {fwd_ms:.2f} ms, fwd+bwd {fwd_bwd_ms:.2f} ms",
              file=sys.stderr, flush=True)
        del x, w13, w2, dy, logits
        torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
