#!/usr/bin/env python3
"""Times LoRA finetuning steps with transformers + PEFT: the reference row for moetune's LoRA bench.

A model of CONFIG's shape with random bf16 weights (built on the GPU, never written to disk),
PEFT LoRA (r, alpha, targets as given; the base weights frozen), gradient checkpointing on (as
PEFT users run 8x7B on one GPU), AdamW on the adapter weights, one micro-batch of SEQ_LEN tokens
per step. Several target lists separated by ';' are timed one after the other on the same base
model (the adapters of one are unloaded before the next). Prints per list one JSON line prefixed
with `RESULT ` (tokens/s from the median step time, peak memory from
torch.cuda.max_memory_allocated during the timed steps), then a short human-readable line.

    python3 tools/bench_peft_lora.py --config mixtral-8x7b.json --seq-len 4096 --r 16 \
        --targets q_proj,k_proj,v_proj,o_proj --steps 5 --warmup 2

Router and expert targets: transformers 5 stores the router weight and a layer's experts as bare
parameters (mlp.gate.weight; fused mlp.experts.gate_up_proj = w1+w3, down_proj = w2), which PEFT
adapts through `target_parameters` (its ParamWrapper, PEFT >= 0.17), the layout moetune's adapters
use (docs/lora.md): `gate` -> mlp.gate.weight, `w1`/`w3` -> mlp.experts.gate_up_proj, `w2` ->
mlp.experts.down_proj. Any other name that is not an nn.Linear module is reported and the run
stops rather than silently training fewer adapters.
"""

import argparse
import json
import statistics
import sys


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    ap.add_argument("--seq-len", type=int, default=4096)
    ap.add_argument("--micro-batch", type=int, default=1)
    ap.add_argument("--r", type=int, default=16)
    ap.add_argument("--alpha", type=float, default=32)
    ap.add_argument("--targets", default="q_proj,k_proj,v_proj,o_proj")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--no-recompute", action="store_true")
    args = ap.parse_args()

    import torch
    import transformers
    import peft
    from transformers import MixtralConfig, MixtralForCausalLM

    if not torch.cuda.is_available():
        print("bench_peft_lora: no CUDA device", file=sys.stderr)
        return 2
    with open(args.config) as f:
        raw = json.load(f)
    cfg = MixtralConfig(**{k: v for k, v in raw.items() if k not in ("architectures", "transformers_version")})
    cfg._attn_implementation = "sdpa"
    cfg.use_cache = False
    torch.manual_seed(args.seed)
    dev = torch.device("cuda")
    torch.set_default_dtype(torch.bfloat16)
    with torch.device(dev):
        model = MixtralForCausalLM(cfg)
    torch.set_default_dtype(torch.float32)
    # Random weights of a realistic scale, so routing is not degenerate: every matrix normal with
    # std initializer_range, every norm weight 1 (as moetune's MixtralModel.createRandom).
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 1:
                p.fill_(1.0)
            else:
                p.normal_(0.0, cfg.initializer_range)
    if not args.no_recompute:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    model.train()
    b, t = args.micro_batch, args.seq_len
    gen = torch.Generator(device=dev).manual_seed(args.seed)
    batches = [torch.randint(0, cfg.vocab_size, (b, t), device=dev, generator=gen) for _ in range(2)]
    for target_list in args.targets.split(";"):
        try:
            model = bench(args, cfg, model, target_list.strip(), batches, torch, transformers, peft)
        except Exception as e:  # one line naming the target list; the lists before it stand
            print("bench_peft_lora: targets %s failed: %s: %s" % (target_list, type(e).__name__, e),
                  file=sys.stderr)
            return 4
        if model is None:
            return 3
    return 0


def bench(args, cfg, model, target_list, batches, torch, transformers, peft):
    """Times one target list; returns the base model with the adapters unloaded, or None."""
    import gc
    targets = [t.strip() for t in target_list.split(",") if t.strip()]
    as_parameter = {"w1": "mlp.experts.gate_up_proj", "w3": "mlp.experts.gate_up_proj",
                    "w2": "mlp.experts.down_proj", "gate": "mlp.gate.weight"}
    target_parameters = []
    # gate_up_proj, then down_proj, then the router: the order moetune writes
    for name in ("mlp.experts.gate_up_proj", "mlp.experts.down_proj", "mlp.gate.weight"):
        if any(as_parameter.get(t) == name for t in targets):
            target_parameters.append(name)
    modules = [t for t in targets if t not in as_parameter]
    linear_names = {n.split(".")[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    missing = [t for t in modules if t not in linear_names]
    if missing:
        print("bench_peft_lora: targets %s are not nn.Linear modules in transformers %s's Mixtral "
              "(its experts are fused parameters)" % (missing, transformers.__version__), file=sys.stderr)
        return None
    lcfg = peft.LoraConfig(r=args.r, lora_alpha=args.alpha, lora_dropout=0.0, target_modules=modules or None,
                           target_parameters=target_parameters or None, task_type="CAUSAL_LM")
    model = peft.get_peft_model(model, lcfg)
    model.train()
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    b, t = args.micro_batch, args.seq_len

    def step(i):
        ids = batches[i % len(batches)]
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = model(input_ids=ids, labels=ids)
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return out.loss

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
    result = {
        "targets": target_list,
        "step_ms": times,
        "impl": "transformers %s + peft %s (LoRA r=%d on %s, checkpointing %s)"
                % (transformers.__version__, peft.__version__, args.r, ",".join(targets), not args.no_recompute),
        "params": total,
        "trainable": trainable,
        "micro_batch": b,
        "seq_len": t,
        "step_ms_median": med,
        "step_ms_min": min(times),
        "step_ms_max": max(times),
        "tokens_per_s": b * t / (med / 1000.0),
        "peak_bytes": torch.cuda.max_memory_allocated(),
        "last_loss": float(loss),
    }
    print("RESULT " + json.dumps(result))
    print("transformers+peft: %.0f tokens/s, step %.1f ms, peak %.1f GiB, %d trainable of %d"
          % (result["tokens_per_s"], med, result["peak_bytes"] / 2**30, trainable, total))
    del opt
    base = model.unload()
    gc.collect()
    torch.cuda.empty_cache()
    return base


if __name__ == "__main__":
    sys.exit(main())
