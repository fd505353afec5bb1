"""Loads Arbor's exports with the real consumers; exits non-zero on the first failure.

usage: check_exports.py EXPORT_DIR MODEL.gguf

EXPORT_DIR holds <format>.jsonl for each JSONL format and mlx/ (an mlx-lm data
directory), as tests/datasets.rs writes them. Every check prints one "ok" line with
what it loaded, so a test can assert on them.
"""
import json, sys, types
from pathlib import Path

import datasets
import jsonschema
from trl.data_utils import is_conversational, maybe_apply_chat_template
from mlx_lm.tuner.datasets import load_dataset as mlx_load_dataset

sys.path.insert(0, str(Path(__file__).parent))
import gguf_tokenizer

out, model = Path(sys.argv[1]), sys.argv[2]
tok = gguf_tokenizer.load(model)
datasets.disable_progress_bars()


def lines(path):
    return [json.loads(l) for l in path.read_text().splitlines() if l.strip()]


def ok(what):
    print("ok", what, flush=True)


# datasets.load_dataset("json") on every JSONL file.
for f in sorted(out.rglob("*.jsonl")):
    n = len(lines(f))
    ds = datasets.load_dataset("json", data_files=str(f), split="train")
    assert len(ds) == n, (f, len(ds), n)
    ok(f"datasets {f.relative_to(out)} {n}")

# OpenAI: every line matches the fine-tuning schema; arguments are JSON text of an object.
schema = json.loads((Path(__file__).parent / "openai_chat.schema.json").read_text())
dpo_schema = {"$defs": schema["$defs"], "$ref": "#/$defs/dpo"}
for name, sch in [("openai.jsonl", schema), ("openai-dpo.jsonl", dpo_schema)]:
    rows = lines(out / name)
    for r in rows:
        jsonschema.validate(r, sch)
        msgs = r.get("messages") or r["input"]["messages"] + r["preferred_output"] + r["non_preferred_output"]
        for m in msgs:
            for c in m.get("tool_calls") or []:
                args = json.loads(c["function"]["arguments"])
                assert isinstance(args, dict), f"double-encoded or non-object arguments: {c}"
    ok(f"openai-schema {name} {len(rows)}")

# TRL: conversational, and the chat template applies (as TRL's trainers do).
for name in ["trl.jsonl", "trl-prompt-completion.jsonl", "trl-preference.jsonl", "kto.jsonl"]:
    ds = datasets.load_dataset("json", data_files=str(out / name), split="train")
    for ex in ds:
        assert is_conversational(ex), ex
        for m in ex.get("messages") or ex.get("prompt"):
            for c in m.get("tool_calls") or []:
                assert isinstance(c["function"]["arguments"], dict), c
        applied = maybe_apply_chat_template(ex, tok, tools=ex.get("tools"))
        keys = set(applied)
        assert keys & {"text", "prompt"}, keys
        for k in keys & {"text", "prompt", "completion", "chosen", "rejected"}:
            assert isinstance(applied[k], str) and applied[k], (k, applied)
    ok(f"trl {name} {len(ds)}")

# mlx-lm: its own loader on the directory, every example tokenized through the template.
args = types.SimpleNamespace(data=str(out / "mlx"), train=True, test=False, hf_dataset=False, mask_prompt=True)
train, valid, test = mlx_load_dataset(args, tok)
for split in (train, valid):
    for i in range(len(split)):
        tokens, offset = split.process(split[i])
        assert len(tokens) > offset > 0, (len(tokens), offset)
ok(f"mlx-lm train {len(train)} valid {len(valid)}")

# LLaMA-Factory: dataset_info.json names each file; ShareGPT alternates strictly.
info = json.loads((out / "dataset_info.json").read_text())
for entry in info.values():
    assert (out / entry["file_name"]).exists(), entry
for r in lines(out / "sharegpt.jsonl"):
    turns = r["conversations"]
    assert len(turns) % 2 == 0
    for i, t in enumerate(turns):
        assert t["from"] in (("human", "observation") if i % 2 == 0 else ("gpt", "function_call")), turns
ok(f"llama-factory dataset_info {len(info)} entries")
