"""TrainConfig: every parameter is known, required ones are present, values are checked."""

from __future__ import annotations

import pytest

from audio2photoreal_pipelines.parameter_block import ParameterError
from audio2photoreal_pipelines.training import TrainConfig


def test_yaml_values_are_coerced():
    config = TrainConfig.model_validate(
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


def test_unknown_and_missing_keys_are_named_on_one_line():
    with pytest.raises(ParameterError) as error:
        TrainConfig.model_validate({"steps": 10, "lr": 1e-3, "stpes": 1e-3})
    message = str(error.value)
    assert "\n" not in message
    assert "stpes: unknown key (did you mean steps?)" in message
    assert "batch_size: Field required" in message


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
        TrainConfig.model_validate({"steps": 10, "batch_size": 2, "lr": 1e-3, field: value})


def test_switches_accept_the_strings_kedro_params_give():
    config = TrainConfig(steps=1, batch_size=1, lr=1e-3, compile="true", tf32="False")
    assert config.compile is True and config.tf32 is False
