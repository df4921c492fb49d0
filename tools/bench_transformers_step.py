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
"""

import argparse
import json
import statistics
import sys


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, help="a HF Mixtral config.json")
    ap.add_argument("--micro-batch", type=int, default=4)
    ap.add_argument("--seq-len", type=int, default=2048)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--attn", default="sdpa", help="attn_implementation (default sdpa)")
    ap.add_argument("--experts", default="default,eager",
                    help="comma-separated experts implementations to time, one row each: 'default' "
                         "(what transformers picks), or eager, grouped_mm, batched_mm, ...")
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

    for name in [e.strip() for e in args.experts.split(",") if e.strip()]:
        if name == "default":
            want = picked
        else:
            want = name
        if getattr(model.config, "_experts_implementation", None) != want:
            try:
                model.set_experts_implementation(want)
            except (ValueError, ImportError, AttributeError) as e:
                print("bench_transformers_step: --experts %s: transformers refused it (%s); skipped" % (name, e))
                continue
        used = getattr(model.config, "_experts_implementation", None)
        for i in range(args.warmup):
            step(i)
        torch.cuda.synchronize()
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
        result = {
            "impl": "transformers %s (%s, experts %s, bf16 autocast, fp32 master)"
                    % (transformers.__version__, model.config._attn_implementation, label),
            "experts": used,
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
