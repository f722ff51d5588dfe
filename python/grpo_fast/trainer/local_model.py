"""Random-init models with a real architecture and vocabulary size, built locally (no download):
for tests, benchmarks and trying the trainer without a model on disk. A real model of the same
architecture loads by path or Hub id and runs through the same code.

    python -m grpo_fast.trainer.local_model runs/qwen2-tiny              # Qwen2 shape, 151,936 ids
    python -m grpo_fast.trainer.local_model runs/qwen-0.5b --preset qwen2.5-0.5b
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

QWEN2_VOCAB = 151_936

# Architecture sizes. "qwen2.5-0.5b" is Qwen2.5-0.5B's published config (hidden 896, 24 layers,
# 14 heads / 2 KV heads, FFN 4864, tied embeddings); "tiny" keeps its vocabulary and shape rules.
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2),
    "qwen2.5-0.5b": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                         num_key_value_heads=2),
}

# A Qwen-style chat template (ChatML), so chat prompts go through the same path as with a real model.
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_tokenizer(vocab_size: int = QWEN2_VOCAB) -> Any:
    """A character-level tokenizer whose vocabulary is padded with filler tokens (`<t123>`) to
    `vocab_size` - 8 entries, like a real tokenizer that is a little smaller than its model's
    embedding. Every printable ASCII character is one token."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<unk>"]
    chars = [chr(c) for c in range(32, 127)] + ["\n", "\t"]
    n = max(len(specials) + len(chars), vocab_size - 8)
    fillers = [f"<t{i}>" for i in range(n - len(specials) - len(chars))]
    vocab = {tok: i for i, tok in enumerate(specials + chars + fillers)}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    core.decoder = decoders.Fuse()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                  unk_token="<unk>", padding_side="left",
                                  additional_special_tokens=["<|im_start|>"])
    tok.chat_template = CHAT_TEMPLATE
    return tok


def build_qwen2(vocab_size: int = QWEN2_VOCAB, seed: int = 0, preset: str = "tiny", **overrides: Any) -> tuple[Any, Any]:
    """(model, tokenizer): a random-init `Qwen2ForCausalLM` in float32 and its tokenizer."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tok = build_tokenizer(vocab_size)
    sizes = {**PRESETS[preset], **overrides}
    config = Qwen2Config(vocab_size=vocab_size, max_position_embeddings=4096, tie_word_embeddings=True,
                         bos_token_id=None, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                         rope_theta=1_000_000.0, rms_norm_eps=1e-6, **sizes)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen2ForCausalLM(config)
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    return model, tok


def save_qwen2(path: str | Path, *, generation_config: dict[str, Any] | None = None, **kwargs: Any) -> Path:
    """Build with `build_qwen2(**kwargs)` and save model + tokenizer to `path`; `generation_config`
    adds fields to the saved generation_config.json (to test a checkpoint that ships sampling defaults)."""
    path = Path(path)
    model, tok = build_qwen2(**kwargs)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    if generation_config:
        f = path / "generation_config.json"
        cfg = json.loads(f.read_text()) if f.exists() else {}
        cfg.update(generation_config)
        f.write_text(json.dumps(cfg, indent=2) + "\n")
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description="Build a random-init Qwen2-architecture model and tokenizer locally.")
    ap.add_argument("path")
    ap.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    ap.add_argument("--vocab-size", type=int, default=QWEN2_VOCAB)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    out = save_qwen2(a.path, preset=a.preset, vocab_size=a.vocab_size, seed=a.seed)
    print(out)


if __name__ == "__main__":
    main()
