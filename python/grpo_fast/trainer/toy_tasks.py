"""Toy verifiable tasks and a tiny random-init causal LM with a character-level tokenizer of our
own, so the whole generate -> verify -> train loop runs on a CPU in seconds with no download."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from grpo_fast.verifiers.base import Verdict, Verifier, VerifyItem, register_verifier

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
# Every character the toy tasks use; one token each.
TOY_CHARS = list("0123456789+-= ")


@dataclass(frozen=True)
class ToyTask:
    """A toy task: its prompts with gold answers, how many new tokens an answer needs,
    and the verifier that scores it."""

    name: str
    records: tuple[dict[str, Any], ...]
    max_completion_length: int
    verifier: str
    description: str
    train_defaults: tuple[tuple[str, Any], ...] = ()
    """Config values the toy run uses unless the user sets them (see docs/training.md for the sweeps)."""
    chars: tuple[str, ...] = tuple(TOY_CHARS)
    """The characters of the task's tokenizer (one token each)."""
    warm_start: Callable[[Any, Any, int], None] | None = None
    """`warm_start(model, tokenizer, seed)` trains the fresh model before GRPO starts (None: GRPO starts
    from the random init)."""


def _next_digit_records() -> tuple[dict[str, Any], ...]:
    return tuple({"prompt": f"{d}=", "answer": str((d + 1) % 10)} for d in range(10))


def _digit_sum_records() -> tuple[dict[str, Any], ...]:
    return tuple({"prompt": f"{a}+{b}=", "answer": str(a + b)} for a in range(10) for b in range(10))


# ---- secret_fn: a task only a tool call can solve -------------------------------------------------
# `f(n)=` asks for f(n), a digit drawn by a hash the model never sees: the python tool's setup code
# defines `f`, so the answer is a value only a tool call returns. 900 prompts (n = 100..999), so a
# run of a few hundred prompts sees most of them once and cannot memorise answers it never got.
SECRET_FN_SETUP = (
    "import hashlib as _hashlib\n"
    "def f(n):\n"
    "    return int(_hashlib.sha256(b'grpo-fast secret_fn %d' % n).hexdigest(), 16) % 10\n"
)
SECRET_FN_CHARS = tuple("0123456789+-= fprint()`\nou")
# The warm start: supervised steps on tool calls alone until the call format and the copying are
# learned (the loss on the model's tokens falls below SECRET_FN_WARM_LOSS), then a few on a mix in
# which only SECRET_FN_WARM_TOOL_SHARE of the examples call the tool.
SECRET_FN_WARM_LOSS = 0.003
SECRET_FN_WARM_MAX_STEPS = 1000
SECRET_FN_WARM_MIX_STEPS = 60
SECRET_FN_WARM_TOOL_SHARE = 0.15


def secret_fn(n: int) -> int:
    """The secret function (the same as `SECRET_FN_SETUP` defines in the sandbox)."""
    return int(hashlib.sha256(b"grpo-fast secret_fn %d" % n).hexdigest(), 16) % 10


def _secret_fn_records() -> tuple[dict[str, Any], ...]:
    return tuple({"prompt": f"f({n})=", "answer": str(secret_fn(n))} for n in range(100, 1000))


def secret_fn_call(n: int) -> str:
    """The model's text of a tool call for `f(n)` in the code-fence format, up to the output marker."""
    return f"```\nprint(f({n}))\n```\n```output"


_WARM_CACHE: dict[tuple[Any, ...], dict[str, Any]] = {}


def secret_fn_warm_start(model: Any, tokenizer: Any, seed: int, *,
                         tool_share: float = SECRET_FN_WARM_TOOL_SHARE,
                         loss_target: float = SECRET_FN_WARM_LOSS, max_steps: int = SECRET_FN_WARM_MAX_STEPS,
                         mix_steps: int = SECRET_FN_WARM_MIX_STEPS,
                         batch_size: int = 64, learning_rate: float = 3e-3,
                         mix_learning_rate: float = 5e-4) -> dict[str, float]:
    """A short supervised warm start that teaches the call format and nothing about `f`.

    Every example that calls the tool copies what it printed, a random digit standing in for the
    output (the tool's text is context, left out of the loss as in GRPO). First only such examples,
    until the loss falls below `loss_target` (the tiny model learns to copy the prompt's number into
    the call and the printed digit into its answer all at once, after a plateau of a few hundred
    steps whose length depends on the seed); then `mix_steps` gentler steps on a mix in which
    `tool_share` of the examples call the tool and the rest answer at once with a random digit. The
    model then calls the tool on a small share of its samples and guesses otherwise: GRPO has to
    learn that calling pays. Deterministic for a seed; a second call with the same model init and
    arguments in the same process reuses the first one's weights. Returns the steps and losses."""
    import torch

    key = (seed, tool_share, loss_target, max_steps, mix_steps, batch_size, learning_rate, mix_learning_rate,
           tuple((k, tuple(v.shape), float(v.float().sum())) for k, v in model.state_dict().items()))
    if key in _WARM_CACHE:
        model.load_state_dict(_WARM_CACHE[key]["weights"])
        return dict(_WARM_CACHE[key]["info"])
    rng = random.Random(seed * 7919 + 17)
    threads = torch.get_num_threads()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.set_num_threads(1)  # a ~0.1M-parameter model: per-op overhead, not arithmetic, sets the pace
        try:
            calls, call_loss = _sft(model, tokenizer, lambda i: _secret_fn_example(tokenizer, rng, True),
                                    batch_size, learning_rate, max_steps, loss_target)
            # The same number of calls in every batch: the share the model learns is not left to chance.
            n_calls = round(tool_share * batch_size)
            mixes, mix_loss = _sft(model, tokenizer,
                                   lambda i: _secret_fn_example(tokenizer, rng, i < n_calls),
                                   batch_size, mix_learning_rate, mix_steps, None)
        finally:
            torch.set_num_threads(threads)
    info = {"call_steps": float(calls), "call_loss": call_loss, "mix_steps": float(mixes),
            "mix_loss": mix_loss}
    _WARM_CACHE.clear()  # one entry: for the control run right after the learning run
    _WARM_CACHE[key] = {"weights": {k: v.detach().clone() for k, v in model.state_dict().items()},
                        "info": info}
    return dict(info)


def _secret_fn_example(tokenizer: Any, rng: random.Random, call: bool) -> tuple[list[int], list[int]]:
    """(token ids, loss mask) of one warm-start example: a tool call and a copy of its (random)
    output, or a random digit at once."""
    from grpo_fast.rollout.formats import code_result_text

    def enc(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    n = rng.randrange(100, 1000)
    ids = tokenizer(f"f({n})=")["input_ids"]
    mask = [0] * len(ids)
    digit = str(rng.randrange(10))
    if call:
        text = secret_fn_call(n)
        # Exactly what a rollout appends after the marker, so warm start and GRPO see the same tokens.
        shown = enc(code_result_text(text, [digit + "\n"]))
        ids, mask = ids + enc(text) + shown, mask + [1] * len(enc(text)) + [0] * len(shown)
    answer = [*enc(digit), tokenizer.eos_token_id]
    return ids + answer, mask + [1] * len(answer)


def _sft(model: Any, tokenizer: Any, example: Callable[[int], tuple[list[int], list[int]]], batch_size: int,
         learning_rate: float, max_steps: int, loss_target: float | None) -> tuple[int, float]:
    """Supervised steps on fresh batches (`example(i)` for i < batch_size) until the mean loss of the
    last 10 is below `loss_target` (None: never) or `max_steps`; (steps, that mean loss)."""
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=learning_rate, weight_decay=0.0)
    pad = tokenizer.pad_token_id
    model.train()
    recent: list[float] = []
    step = 0
    while step < max_steps:
        batch = [example(i) for i in range(batch_size)]
        width = max(len(x) for x, _ in batch)
        ids = torch.tensor([x + [pad] * (width - len(x)) for x, _ in batch])
        att = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x, _ in batch])
        labels = torch.tensor([[t if m else -100 for t, m in zip(x, mk, strict=True)]
                               + [-100] * (width - len(x)) for x, mk in batch])
        loss = model(input_ids=ids, attention_mask=att, labels=labels).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        recent = [*recent[-9:], float(loss.detach())]
        if loss_target is not None and sum(recent) / len(recent) < loss_target:
            break
    return step, sum(recent) / max(len(recent), 1)


TOY_TASKS: dict[str, ToyTask] = {
    # beta = 0.02: without a KL anchor to the initial model, 2 of 5 seeds let one prompt collapse onto a
    # wrong answer (all-wrong groups give no signal, so it never recovers); with it 5 of 5 seeds pass 0.9.
    "next_digit": ToyTask("next_digit", _next_digit_records(), 2, "toy_exact",
                          "`d=` -> (d+1) mod 10, then EOS; a random init is right far below 10% of the time",
                          (("beta", 0.02),)),
    # The bench's most robust recipe on the current code (docs/training.md): lr 5e-4 (2e-3 collapses onto
    # one-digit answers) and a KL anchor to the initial model: 0.92-0.97 on 3 of 3 seeds, greedy 96-99/100.
    # The DAPO additions (dynamic sampling, clip-higher, 2 updates per batch) reached 0.98 on one seed
    # but 0.78-0.81 on the other two.
    "digit_sum": ToyTask("digit_sum", _digit_sum_records(), 3, "toy_exact",
                         "`a+b=` -> a+b for single digits; 55 of 100 sums have one digit, 45 have two",
                         (("learning_rate", 5e-4), ("beta", 0.02), ("max_steps", 1200))),
    # Run with `--tools python` (the learning run) or without (the control, which stays at chance).
    # lr 5e-4: at the toy default 2e-3 the first updates on the few (noisy) tool rollouts drove the
    # call rate to 0 within 5 steps, after which nothing called the tool again (docs/training.md).
    "secret_fn": ToyTask("secret_fn", _secret_fn_records(), 48, "toy_last_line",
                         "`f(n)=` -> f(n), a secret digit only the python tool knows (its setup code "
                         "defines f); a warm start teaches the call format and leaves the model calling "
                         "on ~15% of samples",
                         (("tool_setup_code", SECRET_FN_SETUP), ("max_tool_calls", 1), ("max_turns", 2),
                          ("learning_rate", 5e-4), ("prompts_per_step", 16), ("max_steps", 40),
                          ("eval_prompts", 100)),
                         SECRET_FN_CHARS, secret_fn_warm_start),
}


def get_toy_task(name: str) -> ToyTask:
    from grpo_fast.errors import ConfigError

    if name not in TOY_TASKS:
        raise ConfigError(f"unknown toy task {name!r}; choose one of {sorted(TOY_TASKS)}", field="toy")
    return TOY_TASKS[name]


def build_char_tokenizer(chars: Sequence[str] = tuple(TOY_CHARS)):
    """A character-level `PreTrainedTokenizerFast` over `chars` built with `tokenizers` (no files, no
    download).

    Each character is one token; decoding fuses tokens back without spaces. BOS is prepended to
    every encoded text so the first prompt character has a context token."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate([PAD, BOS, EOS, UNK, *chars])}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    core.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    core.decoder = decoders.Fuse()
    core.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, vocab[BOS])])
    return PreTrainedTokenizerFast(tokenizer_object=core, bos_token=BOS, eos_token=EOS, pad_token=PAD,
                                   unk_token=UNK, padding_side="left")


def build_tiny_model(tokenizer, seed: int = 0, hidden_size: int = 64, num_layers: int = 2):
    """A random-init Llama-style causal LM (~133K parameters with the defaults).

    Sizes follow the CPU prototype in the project notes, which learned `next_digit` in ~55 steps."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=4 * hidden_size,
        num_hidden_layers=num_layers, num_attention_heads=4, num_key_value_heads=4,
        max_position_embeddings=64, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    # Seed a private generator so building the model does not depend on (or disturb) global RNG use.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    return model


class _GoldAnswerVerifier(Verifier):
    """Judges each response against the record's `answer`; a record without one is the only
    "no verdict"."""

    def verify_batch(self, items: Sequence[VerifyItem]) -> list[Verdict]:
        return [
            Verdict(None, None, "no_gold") if it.record.get("answer") is None
            else self.judge(str(it.record["answer"]), it.response)
            for it in items
        ]

    def judge(self, gold: str, got: str) -> Verdict:
        raise NotImplementedError


@register_verifier("toy_exact")
class ToyExactVerifier(_GoldAnswerVerifier):
    """Exact match of the response against the record's `answer` (1.0 or 0.0). Not stripped: the
    policy has to learn to stop (EOS) right after the answer."""

    name = "toy_exact"

    def judge(self, gold: str, got: str) -> Verdict:
        ok = got == gold
        return Verdict(1.0 if ok else 0.0, ok, "correct" if ok else ("no_answer" if not got else "wrong"),
                       extracted=got)


@register_verifier("toy_digits")
class ToyDigitsVerifier(_GoldAnswerVerifier):
    """Partial credit for multi-digit answers: 1.0 for an exact match, otherwise 0.5 * (share of
    gold digits right in their position) + 0.25 if the length is right, so a group in which no
    sample is fully right still has a reward gradient towards the right length and digits."""

    name = "toy_digits"

    def judge(self, gold: str, got: str) -> Verdict:
        if got == gold:
            return Verdict(1.0, True, "correct", extracted=got)
        hits = sum(1 for a, b in zip(got, gold, strict=False) if a == b)
        score = 0.5 * hits / len(gold) + (0.25 if len(got) == len(gold) else 0.0)
        return Verdict(score, False, "partial" if score > 0 else "wrong", extracted=got)


@register_verifier("toy_last_line")
class ToyLastLineVerifier(_GoldAnswerVerifier):
    """Exact match of the response's last line against the record's `answer`: the answer a model
    writes after its tool calls (or at once). The policy has to stop (EOS) right after it."""

    name = "toy_last_line"

    def judge(self, gold: str, got: str) -> Verdict:
        last = got.rsplit("\n", 1)[-1]
        ok = last == gold
        return Verdict(1.0 if ok else 0.0, ok, "correct" if ok else ("no_answer" if not last else "wrong"),
                       extracted=last)
