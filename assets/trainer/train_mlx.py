#!/usr/bin/env python3
"""Arbor's `mlx` recipe (Apple Silicon): mlx-lm LoRA from a YAML config, progress
reported through mlx-lm's training callback as Arbor's JSON lines (the same events as
train_peft.py) instead of its coloured console text.

Usage: train_mlx.py PARAMS_JSON   (written by `arbor train --recipe mlx`)
"""
import json
import math
import os
import sys
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_peft import emit, hf_folder  # noqa: E402  (same job directory)


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        p = json.load(f)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import yaml
    from mlx_lm import load
    from mlx_lm.lora import CONFIG_DEFAULTS, train_model
    from mlx_lm.tuner.callbacks import TrainingCallback
    from mlx_lm.tuner.datasets import load_dataset

    folder = hf_folder(p)  # mlx-lm reads a transformers folder, made once from the GGUF
    def count(name):
        path = os.path.join(p["data"], name)
        return sum(1 for line in open(path) if line.strip()) if os.path.exists(path) else 0

    n_train, n_valid = count("train.jsonl"), count("valid.jsonl")
    # mlx-lm wants a full batch in every set it reads.
    batch = min(p["batch_size"], n_train, n_valid or n_train)
    iters = p["steps"] or max(1, math.ceil(p["epochs"] * n_train / batch))
    config = {
        "model": folder,
        "train": True,
        "data": p["data"],
        "adapter_path": p["out"],
        "iters": iters,
        "batch_size": batch,
        "learning_rate": p["lr"],
        "max_seq_length": p["max_seq_len"],
        "seed": p["seed"],
        "mask_prompt": True,
        "steps_per_report": 1,
        "steps_per_eval": max(1, iters // 5) if n_valid else iters + 1,
        "val_batches": -1 if n_valid else 0,
        "save_every": iters,
        "num_layers": -1,
        "lora_parameters": {
            "rank": p["rank"],
            "scale": p["alpha"] / p["rank"],
            "dropout": p["dropout"],
            "keys": [f"self_attn.{t}" for t in p["targets"] if t.endswith(("q_proj", "k_proj", "v_proj", "o_proj"))]
            + [f"mlp.{t}" for t in p["targets"] if t.endswith(("gate_proj", "up_proj", "down_proj"))],
        },
    }
    cfg_path = os.path.join(os.path.dirname(p["out"]), "mlx_lora.yaml")
    with open(cfg_path, "w") as f:
        yaml.safe_dump(config, f)
    args = dict(CONFIG_DEFAULTS)
    args.update(yaml.safe_load(open(cfg_path)))
    args = types.SimpleNamespace(**args)

    class Report(TrainingCallback):
        def on_train_loss_report(self, info):
            emit(event="step", step=info["iteration"], total=iters, loss=float(info["train_loss"]),
                 lr=float(info["learning_rate"]), tokens_per_s=float(info["tokens_per_second"]))

        def on_val_loss_report(self, info):
            emit(event="eval", step=max(1, info["iteration"]), eval_loss=float(info["val_loss"]))

    emit(event="phase", phase="loading the base model")
    model, tokenizer = load(folder)
    if p.get("chat_template"):  # the engine's template, so mlx-lm renders what Arbor serves
        tokenizer._tokenizer.chat_template = p["chat_template"]
    train_set, valid_set, _ = load_dataset(args, tokenizer)
    emit(event="phase", phase="training")
    train_model(args, model, train_set, valid_set, Report())
    emit(event="done", adapter=p["out"])


if __name__ == "__main__":
    main()
