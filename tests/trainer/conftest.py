"""Fixtures shared by the trainer tests."""

import pytest


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    from grpo_fast.trainer.toy_tasks import build_char_tokenizer, build_tiny_model

    d = tmp_path_factory.mktemp("tiny")
    tok = build_char_tokenizer()
    build_tiny_model(tok).save_pretrained(d)
    tok.save_pretrained(d)
    return d
