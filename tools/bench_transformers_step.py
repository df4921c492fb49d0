#!/usr/bin/env python3
"""Times training steps of transformers' own Mixtral: the reference rows of `moetune bench step`.

A fresh model of CONFIG's shape (random weights, float32 master weights), bf16 autocast, SDPA
attention, torch.optim.AdamW (fused where torch offers it), the same micro-batch, sequence length
and step count as moetune's benchmark, causal-LM loss plus the router aux loss as transformers
computes it (output_router_logits=True). For each experts implementation asked for (--experts)
it prints one JSON line prefixed with `RESULT ` that `moetune bench step --reference
transformers` parses, then a short human-readable line.

    python3 tools/bench_transformers_step.py --config CONFIG.json --micro-batch 4 --seq-len 2048 \
        --steps 10 --warmup 3 [--experts default,eager]   (the default: both rows)

The model is built as a user builds one: MixtralForCausalLM._from_config(config,
attn_implementation="sdpa") with the config's own experts_implementation left alone, so
transformers picks it ("default": in 5.x that is "grouped_mm", torch's grouped GEMM). Note that
torch's grouped_mm is not autocast-enabled: with float32 master weights transformers casts the
expert inputs to float32 and the expert products run in float32, while every nn.Linear runs in
bf16 under autocast. The other names are transformers' own switches
(model.set_experts_implementation): "eager" is the per-expert loop of nn.functional.linear calls
(bf16 under autocast), "batched_mm" a padded batched GEMM. Each row names what transformers
actually dispatched (config._experts_implementation after the switch).

Tokens/s counts micro_batch * seq_len tokens per step; the step time is the median over the
timed steps (CUDA events around forward, backward, clip_grad_norm_(1.0) and optimizer.step()).
Peak memory is torch.cuda.max_memory_allocated over the timed steps (the allocator's view; the
process holds somewhat more: driver_bytes is the device memory in use after the timed steps,
from the driver's free memory, with torch's caching allocator still holding its blocks). With
several implementations the optimizer state carries over from one to the next (same model,
same optimizer), and every one gets its own warm-up steps and peak.

"grouped_bf16" is this script's own experts implementation, registered with transformers'
ExpertsInterface (set_experts_implementation then dispatches to it like to its own backends):
the tokens are sorted by expert and both expert products run as one torch._grouped_mm each on
bf16 operands (ScatterMoE's and SonicMoE's grouping, CUTLASS grouped GEMM on sm_90), with the
expert weights cast to bf16 once per forward by a differentiable .to() -- what autocast does for
an nn.Linear -- so the gradients reach the float32 master weights. It is the bf16 experts path a
careful user of transformers would pick; the row counts the calls it dispatched, so a row that
silently ran another path is visible. A row that fails (an exception, out of memory) prints one
line and the script goes on with the next; the summary at the end lists every timed row and
its ratio to the fastest.
"""

import argparse
import json
import sys


GROUPED_BF16 = "grouped_bf16"
_GROUPED_BF16_CALLS = [0]  # how many expert forwards grouped_bf16 ran (the row reports it)


def grouped_bf16_experts_forward(self, hidden_states, top_k_index, top_k_weights, *args, **kwargs):
    """An experts forward for transformers' ExpertsInterface: bf16 grouped GEMMs.

    hidden_states (S, D) in whatever dtype the block hands over (float32 under autocast with
    float32 weights), top_k_index (S, K) expert ids, top_k_weights (S, K) gates. The weights are
    transformers' stacked expert tensors: gate_up_proj (E, 2F, D) and down_proj (E, D, F), or their
    transposes when the module says experts_are_transposed (told apart by shape otherwise).
    """
    import torch

    _GROUPED_BF16_CALLS[0] += 1
    bf16 = torch.bfloat16
    s_tokens, d = hidden_states.shape
    k = top_k_index.size(-1)
    e = self.gate_up_proj.size(0)
    transposed = getattr(self, "experts_are_transposed", None)
    if transposed is None:
        transposed = self.gate_up_proj.size(-1) != d  # (E, D, 2F) instead of (E, 2F, D)
    # differentiable casts, once per forward: the gradients flow back to the float32 masters
    w_up = self.gate_up_proj.to(bf16)
    w_down = self.down_proj.to(bf16)
    if not transposed:
        w_up = w_up.transpose(-2, -1)  # (E, D, 2F) as a view: grouped_mm takes either layout
        w_down = w_down.transpose(-2, -1)  # (E, F, D)

    expert_ids = top_k_index.reshape(-1)
    token_idx = torch.arange(s_tokens, device=hidden_states.device).repeat_interleave(k)
    order = torch.argsort(expert_ids, stable=True)
    tokens_sorted = token_idx[order]
    if top_k_weights.size(-1) != k:  # (S, E) gate layouts: the chosen experts' gates
        top_k_weights = top_k_weights.gather(-1, top_k_index)
    gates_sorted = top_k_weights.reshape(-1)[order]
    counts = torch.bincount(expert_ids, minlength=e)
    offsets = torch.cumsum(counts, dim=0).to(torch.int32)

    x = hidden_states.to(bf16)[tokens_sorted]  # (S*K, D) grouped by expert
    h = torch._grouped_mm(x, w_up, offs=offsets)  # (S*K, 2F) bf16
    if hasattr(self, "_apply_gate"):
        a = self._apply_gate(h)
    else:
        gate, up = h.chunk(2, dim=-1)
        a = self.act_fn(gate) * up
    y = torch._grouped_mm(a.to(bf16), w_down, offs=offsets)  # (S*K, D) bf16
    y = y * gates_sorted.to(y.dtype).unsqueeze(-1)
    out = torch.zeros_like(hidden_states)
    out.index_add_(0, tokens_sorted, y.to(out.dtype))
    return out


def use_grouped_bf16(model):
    """Switches model's experts to grouped_bf16; returns how (a short phrase) or raises."""
    try:
        from transformers.integrations.moe import ExpertsInterface
    except ImportError as e:
        raise RuntimeError("transformers has no ExpertsInterface (%s)" % e)
    ExpertsInterface.register(GROUPED_BF16, grouped_bf16_experts_forward)
    try:
        model.set_experts_implementation(GROUPED_BF16)
        return "ExpertsInterface.register + set_experts_implementation"
    except (ValueError, ImportError, AttributeError, KeyError, TypeError) as e:
        # older validation lists only its own names: the dispatcher still reads the config field
        model.config._experts_implementation = GROUPED_BF16
        return "ExpertsInterface.register, config._experts_implementation set (%s)" % str(e).split("\n")[0]


def time_row(name, picked, model, step, args, params, b, t):
    """Switches model to the experts implementation `name`, times it, prints its RESULT line and
    returns the result dict, or None when transformers refused the switch."""
    import statistics
    import torch
    import transformers

    how = None
    want = picked if name == "default" else name
    if name == GROUPED_BF16:
        how = use_grouped_bf16(model)
    elif getattr(model.config, "_experts_implementation", None) != want:
        try:
            model.set_experts_implementation(want)
        except (ValueError, ImportError, AttributeError, KeyError) as e:
            print("bench_transformers_step: --experts %s: transformers refused it (%s); skipped" % (name, e))
            return None
    used = getattr(model.config, "_experts_implementation", None)
    if how:
        print("experts %s: switched by %s" % (used, how), flush=True)
    _GROUPED_BF16_CALLS[0] = 0
    for i in range(args.warmup):
        step(i)
    torch.cuda.synchronize()
    if name == GROUPED_BF16 and _GROUPED_BF16_CALLS[0] == 0:
        raise RuntimeError("grouped_bf16 was registered but transformers never called it")
    torch.cuda.reset_peak_memory_stats()
    times = []
    loss = None
    for i in range(args.steps):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        loss = step(i)
        e.record()
        torch.cuda.synchronize()
        times.append(s.elapsed_time(e))
    med = statistics.median(times)
    free, total = torch.cuda.mem_get_info()
    label = "default: " + str(used) if name == "default" else str(used)
    if name == GROUPED_BF16:
        label += " (bf16 torch._grouped_mm, %d expert calls)" % _GROUPED_BF16_CALLS[0]
    result = {
        "impl": "transformers %s (%s, experts %s, bf16 autocast, fp32 master)"
                % (transformers.__version__, model.config._attn_implementation, label),
        "experts": str(used),
        "default": name == "default" or used == picked,
        "params": params,
        "micro_batch": b,
        "seq_len": t,
        "steps": args.steps,
        "step_ms_median": med,
        "step_ms_min": min(times),
        "step_ms_max": max(times),
        "tokens_per_s": b * t / (med / 1000.0),
        "peak_bytes": torch.cuda.max_memory_allocated(),
        "driver_bytes": total - free,
        "last_loss": float(loss.detach()),
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(),
    }
    print("RESULT " + json.dumps(result))
    print("transformers, experts %s: %.0f tokens/s, step %.1f ms (min %.1f, max %.1f), peak %.1f GiB"
          % (label, result["tokens_per_s"], med, min(times), max(times), result["peak_bytes"] / 2**30),
          flush=True)
    if args.profile:
        from torch.profiler import profile, ProfilerActivity
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            step(0)
            torch.cuda.synchronize()
        print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=12, max_name_column_width=90),
              flush=True)
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, help="a HF Mixtral config.json")
    ap.add_argument("--micro-batch", type=int, default=4)
    ap.add_argument("--seq-len", type=int, default=2048)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--attn", default="sdpa", help="attn_implementation (default sdpa)")
    ap.add_argument("--experts", default="default,eager,grouped_bf16",
                    help="comma-separated experts implementations to time, one row each: 'default' "
                         "(what transformers picks), grouped_bf16 (this script's bf16 grouped GEMM "
                         "experts), or transformers' eager, grouped_mm, batched_mm, ...")
    ap.add_argument("--recompute", action="store_true", help="gradient checkpointing on")
    ap.add_argument("--profile", action="store_true",
                    help="after each row, a torch.profiler table of the top CUDA kernels of one step")
    args = ap.parse_args()

    import torch
    import transformers
    from transformers import MixtralConfig, MixtralForCausalLM

    if not torch.cuda.is_available():
        print("bench_transformers_step: no CUDA device", file=sys.stderr)
        return 2
    with open(args.config) as f:
        raw = json.load(f)
    cfg = MixtralConfig(**{k: v for k, v in raw.items() if k not in ("architectures", "transformers_version")})
    cfg.output_router_logits = True
    cfg.use_cache = False
    torch.manual_seed(args.seed)
    dev = torch.device("cuda")
    with torch.device(dev):
        model = MixtralForCausalLM._from_config(cfg, attn_implementation=args.attn).to(torch.float32)
    if args.recompute:
        model.gradient_checkpointing_enable()
    model.train()
    picked = getattr(model.config, "_experts_implementation", None)
    print("transformers %s, torch %s: attention %s, experts implementation picked by default: %s"
          % (transformers.__version__, torch.__version__, model.config._attn_implementation, picked))
    params = sum(p.numel() for p in model.parameters())
    try:
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.0, fused=True)
    except (TypeError, RuntimeError):
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.0)

    b, t = args.micro_batch, args.seq_len
    gen = torch.Generator(device=dev).manual_seed(args.seed)
    batches = [torch.randint(0, cfg.vocab_size, (b, t), device=dev, generator=gen) for _ in range(4)]

    def step(i):
        ids = batches[i % len(batches)]
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = model(input_ids=ids, labels=ids)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return out.loss

    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        logits0 = model(input_ids=batches[0]).router_logits[0]
    load = torch.bincount(logits0.float().topk(cfg.num_experts_per_tok, dim=-1).indices.flatten(),
                          minlength=cfg.num_local_experts)
    print("layer 0 routing of the first batch (tokens per expert, random init): %s" % load.tolist())
    del logits0

    rows = []
    for name in [e.strip() for e in args.experts.split(",") if e.strip()]:
        try:
            row = time_row(name, picked, model, step, args, params, b, t)
        except Exception as e:  # one row failing (an OOM, a missing kernel) must not lose the others
            print("bench_transformers_step: --experts %s failed: %s: %s; skipped"
                  % (name, type(e).__name__, str(e).split("\n")[0]), flush=True)
            opt.zero_grad(set_to_none=True)
            torch.cuda.empty_cache()
            continue
        if row is not None:
            rows.append(row)
    if rows:
        best = max(r["tokens_per_s"] for r in rows)
        print("summary (ratio to the fastest row of this run):")
        for r in rows:
            print("  %-40s %9.0f tokens/s  %6.1f ms  peak %5.2f GiB  %.2fx"
                  % (r["experts"], r["tokens_per_s"], r["step_ms_median"], r["peak_bytes"] / 2**30,
                     r["tokens_per_s"] / best), flush=True)
    else:
        print("bench_transformers_step: no row was timed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
