#!/usr/bin/env python3
"""Where transformers' Mixtral training step spends its time: the implementations it picked
(attention, experts), then a torch.profiler table of the top CUDA kernels for a few steps.

    python3 tools/profile_transformers_step.py --config CONFIG.json [--micro-batch 4] [--seq-len 2048]

Used to check that tools/bench_transformers_step.py times the reference users run (SDPA flash
attention, transformers' default experts implementation), not a slow fallback.
"""
import argparse
import inspect
import json
import sys
import time


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--micro-batch", type=int, default=4)
    ap.add_argument("--seq-len", type=int, default=2048)
    ap.add_argument("--experts", default=None, help="experts implementation to request, if the version has the switch")
    args = ap.parse_args()
    import torch
    import transformers
    from transformers import MixtralConfig, MixtralForCausalLM

    raw = json.load(open(args.config))
    cfg = MixtralConfig(**{k: v for k, v in raw.items() if k not in ("architectures", "transformers_version")})
    print("transformers", transformers.__version__, "torch", torch.__version__)
    print("config impl attrs:", {k: getattr(cfg, k, None) for k in dir(cfg) if "impl" in k.lower() and not k.startswith("__")})
    kw = {"attn_implementation": "sdpa"}
    if args.experts:
        kw["experts_implementation"] = args.experts
    cfg.output_router_logits = True
    cfg.use_cache = False
    try:
        with torch.device("cuda"):
            model = MixtralForCausalLM._from_config(cfg, **kw).to(torch.float32)
    except TypeError as e:
        print("from_config kwargs refused:", e)
        kw.pop("experts_implementation", None)
        with torch.device("cuda"):
            model = MixtralForCausalLM._from_config(cfg, **kw).to(torch.float32)
    mc = model.config
    print("model impl attrs:", {k: getattr(mc, k, None) for k in dir(mc) if "impl" in k.lower() and not k.startswith("__")})
    mlp = model.model.layers[0].mlp
    print("mlp:", type(mlp), "experts:", type(getattr(mlp, "experts", None)))
    ex = getattr(mlp, "experts", None)
    if ex is not None:
        try:
            print("experts forward from", inspect.getsourcefile(type(ex).forward))
            print(inspect.getsource(type(ex).forward)[:1500])
        except Exception as e:  # noqa
            print("no source:", e)
    try:
        import transformers.integrations as ti
        print("integrations with moe/experts:", [m for m in dir(ti) if "moe" in m.lower() or "expert" in m.lower()])
    except Exception as e:  # noqa
        print(e)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.0, fused=True)
    ids = torch.randint(0, cfg.vocab_size, (args.micro_batch, args.seq_len), device="cuda")

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = model(input_ids=ids, labels=ids)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(4):
        step()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    n = 6
    for _ in range(n):
        step()
    torch.cuda.synchronize()
    dt = (time.perf_counter() - t0) / n
    print("wall per step %.1f ms, %.0f tokens/s, peak %.1f GiB" % (dt * 1e3, args.micro_batch * args.seq_len / dt,
                                                                   torch.cuda.max_memory_allocated() / 2**30))
    from torch.profiler import profile, ProfilerActivity
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(2):
            step()
        torch.cuda.synchronize()
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=18, max_name_column_width=70))
    return 0


if __name__ == "__main__":
    sys.exit(main())
