"""A Hugging Face tokenizer built from a GGUF file's own tokenizer, without torch.

transformers can read GGUF tokenizers, but its GGUF reader imports torch (3 GB); the
consumer checks only need the tokenizer and chat template, so they are built here from
the GGUF metadata with the `gguf` and `tokenizers` packages (byte-level BPE, as in
SmolLM2 and other GPT-2-style vocabularies).
"""
from gguf import GGUFReader
from tokenizers import Tokenizer, models, pre_tokenizers, decoders, AddedToken
from transformers import PreTrainedTokenizerFast


def load(path):
    r = GGUFReader(path)

    def get(name, default=None):
        f = r.fields.get(name)
        return f.contents() if f is not None else default

    model = get("tokenizer.ggml.model")
    if model != "gpt2":
        raise SystemExit(f"{path}: tokenizer model {model!r}; only byte-level BPE (gpt2) is supported here")
    tokens = get("tokenizer.ggml.tokens")
    types = get("tokenizer.ggml.token_type", [])
    merges = [tuple(m.split(" ", 1)) for m in get("tokenizer.ggml.merges")]
    tok = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    # Control tokens (type 3), e.g. <|im_start|>, are special: never split.
    tok.add_special_tokens([AddedToken(t, special=True) for t, ty in zip(tokens, types) if ty == 3])
    bos = get("tokenizer.ggml.bos_token_id")
    eos = get("tokenizer.ggml.eos_token_id")
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=tokens[bos] if bos is not None else None,
        eos_token=tokens[eos] if eos is not None else None,
        chat_template=get("tokenizer.chat_template"),
    )


if __name__ == "__main__":
    import sys
    t = load(sys.argv[1])
    print(t.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True))
    print(t("Hello world")["input_ids"])
