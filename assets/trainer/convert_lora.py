#!/usr/bin/env python3
"""A LoRA adapter (PEFT or mlx-lm) to llama.cpp's GGUF LoRA format.

  convert_lora.py ADAPTER_DIR BASE_GGUF OUT_GGUF

Writes general.type=adapter, adapter.type=lora, adapter.lora.alpha, and the tensors
blk.N.<tensor>.weight.lora_a / .lora_b (PEFT's lora_A / lora_B as they are; mlx-lm's
lora_a / lora_b transposed to the same shapes). For llama-family bases the q/k rows of
lora_b get the permutation llama.cpp's converter gave the base weights. The output is
written to a temporary file and renamed. Prints one JSON line with what it wrote.
"""
import json
import os
import re
import sys

import numpy as np
from gguf import GGUFReader, GGUFWriter
from safetensors.numpy import load_file

NAMES = {
    "q_proj": "attn_q",
    "k_proj": "attn_k",
    "v_proj": "attn_v",
    "o_proj": "attn_output",
    "gate_proj": "ffn_gate",
    "up_proj": "ffn_up",
    "down_proj": "ffn_down",
}
PATTERN = re.compile(r"layers\.(\d+)\.(?:self_attn|mlp)\.(\w+_proj)\.lora_([abAB])(?:\.weight)?$")
# Architectures whose conversion to GGUF permutes the rows of q and k (llama.cpp's LlamaModel).
PERMUTED = {"llama"}


def field(reader, key):
    f = reader.fields.get(key)
    if f is None:
        return None
    v = f.parts[f.data[0]]
    return v.tobytes().decode() if v.dtype == np.uint8 else v[0].item()


def permute(w, n_head):
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def main():
    adapter_dir, base, out = sys.argv[1:4]
    reader = GGUFReader(base)
    arch = field(reader, "general.architecture")
    n_head = field(reader, f"{arch}.attention.head_count")
    n_head_kv = field(reader, f"{arch}.attention.head_count_kv") or n_head

    cfg_path = os.path.join(adapter_dir, "adapter_config.json")
    if not os.path.exists(cfg_path):
        raise SystemExit(f"{adapter_dir}: no adapter_config.json; is this a PEFT or mlx-lm adapter?")
    cfg = json.load(open(cfg_path))
    if os.path.exists(os.path.join(adapter_dir, "adapters.safetensors")):  # mlx-lm
        lp = cfg["lora_parameters"]  # mlx-lm scales by `scale`, llama.cpp by alpha / rank
        alpha, kind = float(lp["scale"]) * float(lp["rank"]), "mlx"
        tensors = load_file(os.path.join(adapter_dir, "adapters.safetensors"))
    else:
        alpha, kind = float(cfg["lora_alpha"]), "peft"
        tensors = load_file(os.path.join(adapter_dir, "adapter_model.safetensors"))

    writer = GGUFWriter(out + ".part", arch)
    writer.add_string("general.type", "adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", alpha)
    count = 0
    for name in sorted(tensors):
        m = PATTERN.search(name)
        if not m or m.group(2) not in NAMES:
            raise SystemExit(f"{adapter_dir}: tensor {name} is not a LoRA weight Arbor can convert")
        layer, proj, ab = int(m.group(1)), m.group(2), m.group(3).lower()
        w = tensors[name].astype(np.float32)
        if kind == "mlx":  # mlx-lm keeps x @ A @ B: A is (in, r), B is (r, out)
            w = w.T
        if ab == "b" and arch in PERMUTED and proj in ("q_proj", "k_proj"):
            w = permute(w, n_head if proj == "q_proj" else n_head_kv)
        writer.add_tensor(f"blk.{layer}.{NAMES[proj]}.weight.lora_{ab}", np.ascontiguousarray(w))
        count += 1
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(out + ".part", out)
    print(json.dumps({"event": "converted", "path": out, "tensors": count, "alpha": alpha, "architecture": arch}), flush=True)


if __name__ == "__main__":
    main()
