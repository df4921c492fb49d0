#!/usr/bin/env python3
"""Check a moetune-written model directory with the reference Python libraries.

usage: check_safetensors.py MODEL_DIR [MANIFEST_JSON]

Loads every weight file with safetensors.torch.load_file, checks the index (weight_map and
metadata.total_size) and the {"format": "pt"} metadata, prints name / shape / dtype, and, given a
manifest ({"tensors": {name: {"dtype", "shape", "sum", "first"}}}, written by moetune's
PythonInteropFilesTest), compares dtype, shape, the float64 sum and the first values.
Where transformers is installed it also loads the directory with MixtralForCausalLM and fails on
missing or unexpected keys. Exit status 0 only if everything matches.
"""
import json
import os
import sys

import torch
from safetensors import safe_open
from safetensors.torch import load_file

DTYPES = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16,
          "I32": torch.int32, "I64": torch.int64}


def main():
    d = sys.argv[1]
    errors = []
    index_path = os.path.join(d, "model.safetensors.index.json")
    index = json.load(open(index_path)) if os.path.exists(index_path) else None
    files = sorted(set(index["weight_map"].values())) if index else ["model.safetensors"]
    tensors = {}
    for fn in files:
        with safe_open(os.path.join(d, fn), framework="pt") as f:
            if f.metadata() != {"format": "pt"}:
                errors.append(f"{fn}: metadata {f.metadata()}")
        for k, v in load_file(os.path.join(d, fn)).items():
            if index and index["weight_map"].get(k) != fn:
                errors.append(f"{fn}: {k} not mapped to this file in the index")
            tensors[k] = v
    if index:
        size = sum(t.numel() * t.element_size() for t in tensors.values())
        if size != index["metadata"]["total_size"]:
            errors.append(f"index total_size {index['metadata']['total_size']} != {size}")
        if set(index["weight_map"]) != set(tensors):
            errors.append("index weight_map and file contents differ")
    for k in sorted(tensors):
        print(f"{k} {tuple(tensors[k].shape)} {tensors[k].dtype}")
    if len(sys.argv) > 2:
        manifest = json.load(open(sys.argv[2]))["tensors"]
        if set(manifest) != set(tensors):
            errors.append(f"names differ: {sorted(set(manifest) ^ set(tensors))[:10]}")
        for k, m in manifest.items():
            t = tensors.get(k)
            if t is None:
                continue
            if t.dtype != DTYPES[m["dtype"]] or list(t.shape) != m["shape"]:
                errors.append(f"{k}: {t.dtype}{list(t.shape)} != {m['dtype']}{m['shape']}")
                continue
            s = t.double().sum().item()
            if abs(s - m["sum"]) > 1e-6 * max(1.0, abs(m["sum"])):
                errors.append(f"{k}: sum {s} != {m['sum']}")
            first = t.flatten()[: len(m["first"])].double().tolist()
            if first != m["first"]:
                errors.append(f"{k}: first values {first} != {m['first']}")
    try:
        from transformers import MixtralForCausalLM
    except ImportError:
        print("transformers not installed: model load not checked")
    else:
        _, info = MixtralForCausalLM.from_pretrained(d, output_loading_info=True)
        for key in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"):
            if info.get(key):
                errors.append(f"transformers {key}: {list(info[key])[:10]}")
        print("transformers loaded the directory")
    for e in errors:
        print("MISMATCH", e)
    print(f"{len(tensors)} tensors, {len(errors)} problems")
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
