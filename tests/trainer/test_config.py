"""GRPOConfig: presets, file loading, overrides, validation, and a docstring for every field."""

from __future__ import annotations

import dataclasses
import json

import pytest

from grpo_fast.errors import ConfigError
from grpo_fast.trainer.config import PRESETS, GRPOConfig, parse_override


def test_every_field_has_a_docstring():
    docs = GRPOConfig.field_docs()
    names = [f.name for f in dataclasses.fields(GRPOConfig)]
    assert sorted(docs) == sorted(names)
    assert all(len(d) > 10 for d in docs.values())


def test_default_is_close_to_trl():
    c = GRPOConfig()
    # TRL GRPOConfig defaults: epsilon 0.2, beta 0.0, num_generations 8, temperature 1.0, loss_type "dapo",
    # importance_sampling_level "token", num_iterations 1, lr 1e-6.
    assert (c.epsilon, c.epsilon_high, c.beta, c.num_generations, c.temperature) == (0.2, None, 0.0, 8, 1.0)
    assert (c.loss_type, c.importance_sampling_level, c.num_iterations, c.learning_rate) == ("dapo", "token", 1, 1e-6)


@pytest.mark.parametrize(("preset", "expected"), [
    ("deepseek-r1", dict(epsilon=10.0, beta=0.001, num_generations=16, temperature=1.0, learning_rate=3e-6,
                         prompts_per_step=32, ref_model_sync_steps=400)),
    ("dapo", dict(epsilon=0.2, epsilon_high=0.28, beta=0.0, loss_type="dapo", dynamic_sampling=True)),
    ("dr-grpo", dict(advantage_method="dr_grpo", loss_type="dr_grpo")),
])
def test_presets_set_the_published_values(preset, expected):
    c = GRPOConfig.from_preset(preset)
    for k, v in expected.items():
        assert getattr(c, k) == v, k


def test_override_beats_preset():
    c = GRPOConfig.from_preset("deepseek-r1", learning_rate=1e-5, num_generations=4)
    assert c.learning_rate == 1e-5 and c.num_generations == 4 and c.epsilon == 10.0


def test_load_yaml_and_toml_with_preset_key(tmp_path):
    y = tmp_path / "c.yaml"
    y.write_text("preset: dapo\nlearning_rate: 3.0e-4\nnum_generations: 12\nreport_to: [tensorboard]\n")
    c = GRPOConfig.load(y)
    assert (c.learning_rate, c.num_generations, c.epsilon_high, c.report_to) == (3e-4, 12, 0.28, ("tensorboard",))
    t = tmp_path / "c.toml"
    t.write_text('preset = "dr-grpo"\n[grpo]\nmax_steps = 7\ntoy = "next_digit"\n')
    c = GRPOConfig.load(t, learning_rate=0.5)
    assert (c.max_steps, c.toy, c.loss_type, c.learning_rate) == (7, "next_digit", "dr_grpo", 0.5)


def test_saved_config_round_trips(tmp_path):
    c = GRPOConfig.from_preset("dapo", max_steps=3, report_to=("wandb",))
    c.save(tmp_path / "config.json")
    again = GRPOConfig.from_dict(json.loads((tmp_path / "config.json").read_text()))
    assert again == c


@pytest.mark.parametrize(("field", "value", "why"), [
    ("loss_type", "mean", "unknown aggregation"),
    ("num_generations", 1, "a group of one has no relative advantage"),
    ("beta", -0.1, "negative KL weight"),
    ("temperature", 0.0, "greedy sampling has no log-prob spread"),
    ("importance_sampling_level", "batch", "unknown level"),
    ("advantage_method", "ppo", "unknown estimator"),
    ("report_to", ("mlflow",), "unsupported logger"),
    ("learning_rate", "fast", "not a number"),
    ("max_steps", 2.5, "fractional step count"),
    ("dynamic_sampling", "maybe", "not a boolean"),
    ("no_such_field", 1, "unknown field"),
])
def test_invalid_values_raise_config_error(field, value, why):
    with pytest.raises(ConfigError) as exc:
        GRPOConfig.from_dict({field: value})
    assert exc.value.field == field


def test_ref_sync_without_kl_is_rejected():
    with pytest.raises(ConfigError, match="beta"):
        GRPOConfig(ref_model_sync_steps=10, beta=0.0)


@pytest.mark.parametrize(("text", "key", "value"), [
    ("learning_rate=1e-4", "learning_rate", 1e-4),
    ("dynamic-sampling=true", "dynamic_sampling", True),
    ("epsilon_high=null", "epsilon_high", None),
    ("verifier=math=0.8,format=0.2", "verifier", "math=0.8,format=0.2"),
])
def test_parse_override(text, key, value):
    k, v = parse_override(text)
    assert k == key
    assert GRPOConfig.from_dict({k: v}).__getattribute__(k) == value


def test_presets_are_all_valid():
    for name in PRESETS:
        GRPOConfig.from_preset(name).validate()


def test_the_training_guide_documents_every_field():
    from pathlib import Path

    guide = (Path(__file__).resolve().parents[2] / "docs" / "training.md").read_text()
    missing = [f.name for f in dataclasses.fields(GRPOConfig) if f"`{f.name}`" not in guide]
    assert not missing, f"docs/training.md lacks {missing}"


@pytest.mark.parametrize("value", [{"problem": "prompt", "solution": "answer"}, ["problem=prompt", "solution=answer"],
                                   "problem=prompt,solution=answer"])
def test_columns_from_a_file_a_list_or_the_command_line(value):
    c = GRPOConfig.from_dict({"columns": value})
    assert c.columns == {"problem": "prompt", "solution": "answer"}
    assert GRPOConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c


@pytest.mark.parametrize(("field", "value"), [("columns", ["problem"]), ("prompt_template", " "),
                                              ("answer_field", ""), ("prompt_field", "")])
def test_bad_data_fields_are_rejected(field, value):
    with pytest.raises(ConfigError) as exc:
        GRPOConfig.from_dict({field: value})
    assert exc.value.field == field


def test_resolve_config_from_a_file_a_preset_and_overrides(tmp_path):
    from grpo_fast.trainer.config import resolve_config

    f = tmp_path / "c.yaml"
    f.write_text("preset: dr-grpo\nlearning_rate: 2.0e-5\nanswer_field: solution\n")
    cfg, explicit = resolve_config(f, overrides={"learning-rate": 3e-5, "max_steps": 9})
    assert (cfg.learning_rate, cfg.max_steps, cfg.answer_field, cfg.loss_type) == (3e-5, 9, "solution", "dr_grpo")
    assert {"learning_rate", "max_steps", "answer_field", "loss_type", "advantage_method"} <= explicit
    cfg, _ = resolve_config(f, preset="dapo")  # the preset given here beats the file's
    assert (cfg.loss_type, cfg.epsilon_high) == ("dapo", 0.28)
