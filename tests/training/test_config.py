"""TrainConfig: every parameter is known, required ones are present, values are checked."""

from __future__ import annotations

import pytest

from audio2photoreal_pipelines.training import TrainConfig


def test_from_params_coerces_yaml_values():
    config = TrainConfig.from_params(
        {
            "steps": 100,
            "batch_size": 4,
            "lr": "1e-4",
            "betas": [0.9, 0.99],
            "lr_milestones": [50, 80],
            "grad_clip_norm": 1,
            "ema_decay": None,
        }
    )
    assert config.lr == 1e-4
    assert config.betas == (0.9, 0.99)
    assert config.lr_milestones == (50, 80)
    assert config.grad_clip_norm == 1.0 and isinstance(config.grad_clip_norm, float)
    hash(config)  # frozen with tuples: usable as a cache key


def test_from_params_names_unknown_and_missing_keys():
    with pytest.raises(ValueError) as error:
        TrainConfig.from_params({"steps": 10, "lr": 1e-3, "learning_rate": 1e-3})
    message = str(error.value)
    assert "unknown key(s) ['learning_rate']" in message
    assert "missing required key(s) ['batch_size']" in message


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("steps", 0),
        ("batch_size", True),
        ("lr", "fast"),
        ("betas", (0.9,)),
        ("lr_milestones", (80, 50)),
        ("ema_decay", 1.0),
        ("grad_clip_norm", 0.0),
        ("keep_checkpoints", 0),
        ("warmup_steps", 2.5),
        ("processes", 0),
        ("compile", "yes"),
        ("bf16", 1),
    ],
)
def test_invalid_values_are_rejected_with_the_field_name(field, value):
    with pytest.raises(ValueError, match=field):
        TrainConfig(**{"steps": 10, "batch_size": 2, "lr": 1e-3, field: value})


def test_switches_accept_the_strings_kedro_params_give():
    config = TrainConfig(steps=1, batch_size=1, lr=1e-3, compile="true", tf32="False")
    assert config.compile is True and config.tf32 is False
