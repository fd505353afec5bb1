#!/usr/bin/env python3
"""Arbor's `peft` recipe: LoRA on a GGUF base model with transformers + peft.

Arbor renders and tokenizes the examples itself (the engine's chat template and
tokenizer), so what is trained is exactly what the engine will see; this script only
reads token ids and their loss mask. It prints one JSON object per line on stdout:

  {"event": "phase", "phase": "..."}
  {"event": "step", "step": 3, "total": 10, "loss": 4.25, "lr": 0.001, "tokens_per_s": 812.0}
  {"event": "eval", "step": 5, "eval_loss": 3.9}
  {"event": "done", "adapter": "<dir>"}

Usage: train_peft.py PARAMS_JSON   (written by `arbor train`; see docs/training.md)
"""
import json
import math
import os
import random
import sys
import time


def emit(**event):
    print(json.dumps(event), flush=True)


def load_examples(path):
    out = []
    if not path or not os.path.exists(path):
        return out
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            rec = json.loads(line)
            ids, labels = rec["input_ids"], rec["labels"]
            if len(ids) != len(labels):
                raise SystemExit(f"{path}:{n}: input_ids and labels differ in length")
            out.append((ids, labels))
    return out


def hf_folder(p):
    """The base model as a transformers folder, made once from the GGUF and reused."""
    gguf = os.path.abspath(p["model"])
    st = os.stat(gguf)
    name = f"{os.path.basename(gguf)}-{st.st_size}-{int(st.st_mtime)}-v2"
    folder = os.path.join(p["hf_cache"], name)
    if os.path.exists(os.path.join(folder, "config.json")):
        return folder
    emit(event="phase", phase="converting the GGUF to a transformers folder (once per model)")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    where = dict(pretrained_model_name_or_path=os.path.dirname(gguf), gguf_file=os.path.basename(gguf))
    model = AutoModelForCausalLM.from_pretrained(**where, dtype=torch.float32)
    model.hf_quantizer = None  # dequantized: saving refuses while a quantizer is attached
    tmp = folder + ".part"
    model.save_pretrained(tmp)
    # The tokenizer too (mlx-lm reads it from the folder; the peft recipe gets token ids).
    AutoTokenizer.from_pretrained(**where).save_pretrained(tmp)
    os.replace(tmp, folder)
    return folder


def batches(examples, size, rng):
    order = list(range(len(examples)))
    while True:
        rng.shuffle(order)
        for i in range(0, len(order), size):
            yield [examples[j] for j in order[i : i + size]]


def collate(batch, pad_id):
    import torch

    width = max(len(ids) for ids, _ in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, (i, l) in enumerate(batch):
        ids[row, : len(i)] = torch.tensor(i)
        labels[row, : len(l)] = torch.tensor(l)
        mask[row, : len(i)] = 1
    return ids, labels, mask


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        p = json.load(f)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    emit(event="phase", phase="loading torch")
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(p["seed"])
    if p.get("threads"):
        torch.set_num_threads(int(p["threads"]))
    train = load_examples(p["train"])
    valid = load_examples(p.get("valid"))
    if not train:
        raise SystemExit(f"{p['train']}: no training examples")
    folder = hf_folder(p)
    emit(event="phase", phase="loading the base model")
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    targets = [t for t in p["targets"] if t in names]
    if not targets:
        raise SystemExit(f"none of the target modules {p['targets']} is in this model")
    model = get_peft_model(
        model,
        LoraConfig(
            r=p["rank"],
            lora_alpha=p["alpha"],
            lora_dropout=p["dropout"],
            target_modules=targets,
            task_type="CAUSAL_LM",
        ),
    )
    model.train()
    per_epoch = math.ceil(len(train) / p["batch_size"])
    total = p["steps"] or max(1, math.ceil(p["epochs"] * per_epoch))
    warmup = min(p.get("warmup_steps", 0), total - 1)
    opt = torch.optim.AdamW(
        [q for q in model.parameters() if q.requires_grad], lr=p["lr"], weight_decay=0.0
    )

    def lr_at(step):  # linear warmup, then linear decay to 10%
        if step < warmup:
            return p["lr"] * (step + 1) / (warmup + 1)
        done = (step - warmup) / max(1, total - warmup)
        return p["lr"] * (1.0 - 0.9 * done)

    pad = 0
    rng = random.Random(p["seed"])
    stream = batches(train, p["batch_size"], rng)
    eval_every = p.get("eval_every") or max(1, total // 5)

    def evaluate():
        model.eval()
        losses = []
        with torch.no_grad():
            for i in range(0, len(valid), p["batch_size"]):
                ids, labels, mask = collate(valid[i : i + p["batch_size"]], pad)
                losses.append(model(input_ids=ids, attention_mask=mask, labels=labels).loss.item())
        model.train()
        return sum(losses) / len(losses)

    emit(event="phase", phase="training")
    began = time.perf_counter()
    for step in range(1, total + 1):
        t0 = time.perf_counter()
        ids, labels, mask = collate(next(stream), pad)
        for g in opt.param_groups:
            g["lr"] = lr_at(step - 1)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        dt = time.perf_counter() - t0
        emit(
            event="step",
            step=step,
            total=total,
            loss=round(loss.item(), 6),
            lr=lr_at(step - 1),
            tokens_per_s=round(int(mask.sum()) / dt, 1),
            epoch=round(step / per_epoch, 3),
            elapsed_s=round(time.perf_counter() - began, 3),
        )
        if valid and (step % eval_every == 0 or step == total):
            emit(event="eval", step=step, eval_loss=round(evaluate(), 6))
    emit(event="phase", phase="saving the adapter")
    model.save_pretrained(p["out"])
    emit(event="done", adapter=p["out"])


if __name__ == "__main__":
    main()
