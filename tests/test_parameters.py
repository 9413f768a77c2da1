"""Typed parameters: every ``params:`` input of every node has a type, both environments pass
it, and a bad value stops ``kedro run`` before its first node in one line naming key and file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from kedro.framework.project import find_pipelines
from kedro.framework.startup import bootstrap_project
from kedro.validation.exceptions import ParameterValidationError
from kedro.validation.parameter_validator import ParameterValidator
from kedro.validation.type_extractor import TypeExtractor

from audio2photoreal_pipelines.cli import parameter_problems
from audio2photoreal_pipelines.parameter_block import ParameterError
from audio2photoreal_pipelines.parameters import AudioFeatureParams, WindowParams
from tests.conftest import PROJECT_ROOT, project_parameters

KEDRO = str(Path(sys.executable).with_name("kedro"))


@pytest.fixture(scope="module")
def pipelines():
    bootstrap_project(PROJECT_ROOT)
    return find_pipelines(raise_errors=True)


def test_every_parameter_input_of_every_node_is_typed(pipelines):
    typed = TypeExtractor(pipelines).extract_types_from_pipelines()
    inputs = {
        name.removeprefix("params:")
        for pipeline in pipelines.values()
        for node in pipeline.nodes
        for name in node.inputs
        if name.startswith("params:")
    }
    assert inputs - set(typed) == set()
    assert {"vq.train", "guide.model", "pose.objective", "sample", "dataset"} <= set(typed)


@pytest.mark.parametrize("env", ["base", "paper"])
def test_both_environments_pass_validation(pipelines, env):
    validated = ParameterValidator(pipelines).validate_raw_params(project_parameters(env))
    assert validated["pose"]["train"].steps == project_parameters(env)["pose"]["train"]["steps"]


@pytest.mark.parametrize(
    ("dotted", "value", "problem"),
    [
        ("vq.train.stpes", 3, "vq.train.stpes: unknown key (did you mean steps?)"),
        ("guide.train.lr", -1, "guide.train.lr: Input should be greater than 0, got -1"),
        ("face.model.dim", 130, "face.model: FaceDenoiser refuses these parameters: dim 130"),
        ("pose.windows.min_frames", 200, "pose.windows: min_frames 200 is more than max"),
        ("sample.keyframe_step", 15, "sample.keyframe_step: unknown key"),
        ("audio_features.n_mels", 20, "audio_features: these features are 40 wide but"),
        ("pose.objective.wiener_gain.levls", 3, "pose.objective.wiener_gain.levls: unknown key"),
        ("face.objective.diffusion_steps", 500, "face.objective.diffusion_steps: must be 1000"),
        ("sample.eta", 0.5, "sample: eta 0.5 needs the ddim sampler, not dpmsolver"),
    ],
)
def test_a_bad_value_is_named_with_its_key(pipelines, dotted, value, problem):
    params = project_parameters()
    *parents, leaf = dotted.split(".")
    node = params
    for key in parents:
        node = node[key]
    node[leaf] = value
    with pytest.raises(ParameterValidationError) as error:
        ParameterValidator(pipelines).validate_raw_params(params)
    message = parameter_problems(error.value, {}, PROJECT_ROOT / "conf", "local")
    assert len(message.splitlines()) == 1
    assert message.startswith(f"parameter {problem}"), message


def test_the_file_that_set_a_bad_key_is_named(tmp_path, pipelines):
    conf = tmp_path / "conf"
    (conf / "base").mkdir(parents=True)
    (conf / "local").mkdir()
    (conf / "base" / "parameters_train_vq.yml").write_text("vq:\n  train:\n    steps: 3\n")
    (conf / "local" / "parameters.yml").write_text("vq:\n  train:\n    stpes: 3\n")
    params = project_parameters()
    params["vq"]["train"]["stpes"] = 3
    params["guide"]["train"].pop("steps")
    params["split"]["num_val"] = -1
    with pytest.raises(ParameterValidationError) as error:
        ParameterValidator(pipelines).validate_raw_params(params)
    lines = parameter_problems(error.value, {"split": {"num_val": -1}}, conf, "local")
    assert sorted(lines.splitlines()) == [
        "parameter guide.train.steps: Field required (set in no parameters file)",
        "parameter split.num_val: Input should be greater than or equal to 0, got -1 "
        "(set in --params)",
        "parameter vq.train.stpes: unknown key (did you mean steps?) "
        f"(set in {conf / 'local' / 'parameters.yml'})",
    ]


def test_a_block_reports_every_problem_on_one_line():
    with pytest.raises(ParameterError) as error:
        WindowParams.model_validate({"kind": "hands", "min_frames": 0, "max_frame": 5})
    assert str(error.value) == (
        "kind: Input should be 'face' or 'body', got 'hands'; "
        "min_frames: Input should be greater than or equal to 1, got 0; "
        "max_frames: Field required; "
        "max_frame: unknown key (did you mean max_frames?)"
    )


def test_the_audio_width_follows_the_feature_settings():
    assert AudioFeatureParams(n_mels=40, feature_dim=80).feature_dim == 80
    upstream = {"vq_wav2vec_checkpoint": "vq-wav2vec.pt", "feature_dim": 1024}
    assert AudioFeatureParams(**upstream).feature_dim == 1024
    with pytest.raises(ValueError, match="these features are 1024 wide"):
        AudioFeatureParams(**{**upstream, "feature_dim": 80})


@pytest.mark.slow
def test_kedro_run_with_a_misspelt_key_stops_before_the_first_node(project_copy: Path):
    result = subprocess.run(
        [KEDRO, "run", "--params", "vq.train.stpes=3"],
        cwd=project_copy,
        env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert errors == [
        "Error: parameter vq.train.stpes: unknown key (did you mean steps?) (set in --params)"
    ]
    assert "Traceback" not in result.stderr
    assert "Running node" not in result.stderr + result.stdout
    assert not (project_copy / "data" / "01_raw").exists() or not any(
        (project_copy / "data" / "01_raw").iterdir()
    )
