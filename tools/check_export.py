#!/usr/bin/env python3
"""Checks a moetune export with HuggingFace transformers.

Loads EXPORT_DIR with transformers.AutoModelForCausalLM.from_pretrained (float32 on the CPU, or
on a GPU with --device cuda), fails on any missing or unexpected key, runs the token ids stored in
REFERENCE (written by `moetune export ... --write-reference-logits REFERENCE`) and compares the
logits with moetune's.

    python tools/check_export.py runs/demo/export runs/demo/reference-logits.safetensors

Tolerances: an fp32 export must match within 1e-4 relative error (||a-b|| / ||b||), the tolerance
moetune's CPU parity tests use; bf16/fp16 exports are compared in float32 after loading, so the
same bound applies to the computation (use --tol to loosen it deliberately, e.g. 1e-2 when the
model is run in bf16 with --run-dtype bf16). Exit status 0 on PASS, 1 on FAIL.
"""

import argparse
import json
import os
import sys


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("export_dir")
    ap.add_argument("reference", help="safetensors with input_ids (B, T) and logits (B, T, V)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    ap.add_argument("--run-dtype", default="fp32", choices=["fp32", "bf16"],
                    help="dtype transformers computes in (default: fp32)")
    ap.add_argument("--tol", type=float, default=None,
                    help="relative error bound (default: 1e-4 for fp32, 1e-2 for bf16)")
    args = ap.parse_args()

    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    tol = args.tol if args.tol is not None else (1e-4 if args.run_dtype == "fp32" else 1e-2)
    dtype = torch.float32 if args.run_dtype == "fp32" else torch.bfloat16

    index = os.path.join(args.export_dir, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            weight_map = json.load(f)["weight_map"]
        print(f"sharded export: {len(weight_map)} tensors in {len(set(weight_map.values()))} files")

    model, info = AutoModelForCausalLM.from_pretrained(
        args.export_dir, dtype=dtype, output_loading_info=True)
    problems = {k: v for k, v in info.items() if v and k in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs")}
    if problems:
        for k, v in problems.items():
            print(f"{k}: {sorted(v)[:10]}{' ...' if len(v) > 10 else ''}")
        print("FAIL: transformers did not load every weight exactly")
        return 1
    print(f"loaded {type(model).__name__} from {args.export_dir}: no missing, unexpected or mismatched keys")

    ref = load_file(args.reference)
    ids = ref["input_ids"].to(torch.long)
    want = ref["logits"].to(torch.float32)
    model = model.to(args.device).eval()
    with torch.no_grad():
        got = model(ids.to(args.device)).logits.to(torch.float32).cpu()
    if got.shape != want.shape:
        print(f"FAIL: logits shape {tuple(got.shape)} != reference {tuple(want.shape)}")
        return 1
    diff = (got - want).abs()
    max_abs = diff.max().item()
    rel = (torch.linalg.vector_norm(got - want) / torch.linalg.vector_norm(want)).item()
    max_rel = (diff / want.abs().clamp_min(1e-6)).max().item()
    print(f"logits {tuple(want.shape)}: max abs error {max_abs:.3e}, relative error ||a-b||/||b|| "
          f"{rel:.3e}, max elementwise relative {max_rel:.3e}, argmax agreement "
          f"{(got.argmax(-1) == want.argmax(-1)).float().mean().item():.4f}")
    if rel <= tol:
        print(f"PASS (relative error {rel:.3e} <= {tol:g})")
        return 0
    worst = torch.nonzero(diff == diff.max())[0].tolist()
    print(f"first worst element at {worst}: transformers {got[tuple(worst)].item():.6f}, "
          f"moetune {want[tuple(worst)].item():.6f}")
    print(f"FAIL (relative error {rel:.3e} > {tol:g})")
    return 1


if __name__ == "__main__":
    sys.exit(main())
