#!/usr/bin/env python3
"""Checks moetune's LoRA exports with PEFT and transformers.

    python tools/check_peft.py BASE_DIR ADAPTER_DIR MERGED_DIR REFERENCE

BASE_DIR     the base model the adapters were trained on (a HuggingFace Mixtral directory)
ADAPTER_DIR  `moetune export --adapter` output: adapter_config.json + adapter_model.safetensors
MERGED_DIR   `moetune export` output of the same checkpoint: the adapters merged into full weights
REFERENCE    `moetune export --adapter ... --write-reference-logits REFERENCE`: token ids and
             moetune's logits of base + adapter (CPU, float32, adapters unmerged)

1. Loads BASE_DIR with transformers and ADAPTER_DIR on top with peft.PeftModel.from_pretrained;
   fails unless every tensor of adapter_model.safetensors lands, bit for bit, in a LoRA parameter
   of the PEFT model and every LoRA parameter of the PEFT model comes from the file.
2. Compares the PEFT model's logits with moetune's.
3. Loads MERGED_DIR with transformers (no missing or unexpected keys) and compares its logits.

Both comparisons in float32 on the CPU, relative error ||a-b|| / ||b|| <= 1e-4 (--tol), the bound
of moetune's CPU parity tests. Exit status 0 on PASS, 1 on FAIL. Written against PEFT 0.21 and
transformers 5.18 (the fused Mixtral experts; PEFT's target_parameters for router and experts).
"""

import argparse
import sys


def rel_err(a, b):
    return float((a - b).norm() / b.norm())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("base_dir")
    ap.add_argument("adapter_dir")
    ap.add_argument("merged_dir")
    ap.add_argument("reference")
    ap.add_argument("--tol", type=float, default=1e-4)
    args = ap.parse_args()

    import peft
    import torch
    import transformers
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    print(f"torch {torch.__version__}, transformers {transformers.__version__}, peft {peft.__version__}")
    torch.manual_seed(0)
    ref = load_file(args.reference)
    ids = ref["input_ids"].to(torch.long)
    want = ref["logits"].to(torch.float32)
    ok = True

    base = AutoModelForCausalLM.from_pretrained(args.base_dir, dtype=torch.float32)
    model = PeftModel.from_pretrained(base, args.adapter_dir).eval()
    stored = load_file(f"{args.adapter_dir}/adapter_model.safetensors")
    params = {k: v for k, v in model.state_dict().items() if "lora_" in k}
    # PEFT keeps the adapter name in the module path ("lora_A.default.weight"); the file has none
    landed = {}
    for k, v in params.items():
        landed[k.replace(".default", "")] = v
    missing = sorted(set(stored) - set(landed))
    extra = sorted(set(landed) - set(stored))
    differ = sorted(k for k in set(stored) & set(landed)
                    if stored[k].shape != landed[k].shape or not torch.equal(stored[k].float(), landed[k].float()))
    if missing or extra or differ:
        print(f"FAIL adapter load: {len(missing)} file tensors without a PEFT parameter {missing[:4]},"
              f" {len(extra)} PEFT parameters not in the file {extra[:4]}, {len(differ)} differ {differ[:4]}")
        ok = False
    else:
        print(f"adapter: all {len(stored)} tensors of adapter_model.safetensors loaded by PEFT unchanged")
    with torch.no_grad():
        got = model(input_ids=ids).logits.float()
    e = rel_err(got, want)
    print(f"PEFT (base + adapter) vs moetune: relative error {e:.3e} (bound {args.tol:g})")
    ok &= e <= args.tol

    merged, info = AutoModelForCausalLM.from_pretrained(
        args.merged_dir, dtype=torch.float32, output_loading_info=True)
    problems = {k: v for k, v in info.items() if v and k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    if problems:
        print(f"FAIL merged load: {problems}")
        ok = False
    with torch.no_grad():
        got_m = merged.eval()(input_ids=ids).logits.float()
        with model.disable_adapter():  # the base alone: shows that the adapter matters
            got_base = model(input_ids=ids).logits.float()
    e_m = rel_err(got_m, want)
    e_b = rel_err(got_base, want)
    print(f"transformers (merged export) vs moetune: relative error {e_m:.3e} (bound {args.tol:g})")
    print(f"base alone (adapter disabled) vs moetune: relative error {e_b:.3e} (the adapter's effect)")
    ok &= e_m <= args.tol
    if e_b <= args.tol:
        print("FAIL: the adapter changes nothing measurable; train longer before checking")
        ok = False
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
