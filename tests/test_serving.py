"""The servable person: the pyfunc model in-process, then behind ``mlflow models serve``."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from mlflow.exceptions import MlflowException

from audio2photoreal_pipelines.data.scenes import discover_scenes, face_valid_mask
from audio2photoreal_pipelines.data.stats import compute_data_stats
from audio2photoreal_pipelines.models.builders import (
    build_face_denoiser,
    build_guide,
    build_pose_denoiser,
    build_vq,
)
from audio2photoreal_pipelines.parameters import AudioFeatureParams
from audio2photoreal_pipelines.serving import (
    SIGNATURE,
    PersonSampler,
    SampleParams,
    input_example,
    save_sampler_artifacts,
)
from audio2photoreal_pipelines.training.distributed import free_port
from tests.conftest import project_parameters, stop, wait_until_serving
from tests.data.conftest import write_scenes

MLFLOW = str(Path(sys.executable).with_name("mlflow"))


def untrained_sampler_artifacts(root: Path) -> dict[str, str]:
    """Artifacts of a sampler of untrained base-size models (shapes, not quality, are tested)."""
    scenes = discover_scenes(write_scenes(root / "person", 2, num_frames=90))
    masks = {name: face_valid_mask(scene) for name, scene in scenes.items()}
    stats = compute_data_stats(scenes, masks, list(scenes))
    params = project_parameters()
    torch.manual_seed(0)
    vq = build_vq(params["vq"]["model"])
    modules = {
        "vq": vq,
        "guide": build_guide(params["guide"]["model"], vq=vq),
        "face": build_face_denoiser(params["face"]["model"]),
        "pose": build_pose_denoiser(params["pose"]["model"]),
    }
    sample = SampleParams.model_validate(params["sample"] | {"num_repetitions": 2})
    features = AudioFeatureParams.model_validate(params["audio_features"])
    return save_sampler_artifacts(root / "artifacts", modules, stats, sample, features)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A saved sampler pyfunc of untrained base-size models."""
    root = tmp_path_factory.mktemp("serving")
    path = root / "model"
    mlflow.pyfunc.save_model(
        path,
        python_model=PersonSampler(),
        artifacts=untrained_sampler_artifacts(root),
        signature=SIGNATURE,
    )
    return path


@pytest.fixture(scope="module")
def served(model_dir):
    return mlflow.pyfunc.load_model(str(model_dir))


def wav_bytes(seconds: float, rate: int, channels: int) -> bytes:
    """A wav file of tones, one per channel."""
    t = np.arange(int(seconds * rate)) / rate
    audio = np.stack([0.3 * np.sin(2 * np.pi * (200 + 50 * c) * t) for c in range(channels)], 1)
    buffer = io.BytesIO()
    sf.write(buffer, audio.astype(np.float32), rate, format="WAV")
    return buffer.getvalue()


def _wav_base64(seconds: float, rate: int, channels: int) -> str:
    return base64.b64encode(wav_bytes(seconds, rate, channels)).decode("ascii")


def test_a_wav_or_a_float_array_gives_face_and_body_at_30_fps(served):
    from_wav = served.predict(pd.DataFrame([{"wav_base64": _wav_base64(2.0, 16_000, 2)}]))
    assert from_wav["face"].shape == (2, 60, 256) and from_wav["body"].shape == (2, 60, 104)
    tone = np.sin(np.arange(24_000) / 10.0) * 0.2
    from_array = served.predict(
        pd.DataFrame(
            [{"audio": tone, "partner_audio": 0 * tone, "sample_rate": 8000, "num_repetitions": 3}]
        )
    )
    assert from_array["face"].shape == (3, 90, 256) and from_array["body"].shape == (3, 90, 104)
    assert np.isfinite(from_array["body"]).all()
    again = served.predict(pd.DataFrame([{"wav_base64": _wav_base64(2.0, 16_000, 2)}]))
    np.testing.assert_array_equal(again["body"], from_wav["body"])  # seeded: the same request


BAD_REQUESTS = {
    "not audio": ({"wav_base64": base64.b64encode(b"hello" * 100).decode()}, "not a readable"),
    "not base64": ({"wav_base64": "@@@"}, "not valid base64"),
    "empty": ({"audio": []}, "no audio"),
    "NaN samples": ({"audio": [0.1, float("nan")] * 8000}, "NaN"),
    "0 Hz": ({"audio": [0.1] * 16000, "sample_rate": 0}, "sample rate 0 Hz"),
    "too long": ({"audio": [0.0] * 8000 * 61, "sample_rate": 8000}, "longer than the 60 s"),
    "wrong field name": ({"wav": "UklGRg=="}, "send wav_base64 or audio"),
    "too short": ({"audio": [0.1] * 8000, "sample_rate": 16000}, "shorter than the one second"),
}


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_a_bad_request_is_refused_with_a_reason(served, case):
    record, reason = BAD_REQUESTS[case]
    with pytest.raises(MlflowException, match=reason) as raised:
        served.predict(pd.DataFrame([record]))
    assert raised.value.get_http_status_code() == 400
    raised.value.message = "Failed to predict data '...'"  # what the scoring server does
    assert reason in raised.value.message and "\n" not in raised.value.message


def _post(url: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.slow
def test_mlflow_models_serve_answers_and_survives_a_bad_request(model_dir, tmp_path):
    port = free_port()
    server = subprocess.Popen(
        [MLFLOW, "models", "serve", "-m", str(model_dir), "--env-manager", "local"]
        + ["-h", "127.0.0.1", "-p", str(port)],
        # `mlflow models serve` execs uvicorn from PATH: the project's environment, activated.
        env={
            **os.environ,
            "OMP_NUM_THREADS": "1",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        },
        stdout=open(tmp_path / "server.log", "w"),  # noqa: SIM115 (closed with the process)
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until_serving(
            f"http://127.0.0.1:{port}/ping", server, tmp_path / "server.log", seconds=90
        )
        url = f"http://127.0.0.1:{port}/invocations"
        good = {"dataframe_records": [{"wav_base64": _wav_base64(3.0, 48_000, 2)}]}

        status, answer = _post(url, good)
        assert status == 200, answer
        face, body = (np.asarray(answer["predictions"][k]) for k in ("face", "body"))
        assert face.shape == (2, 90, 256) and body.shape == (2, 90, 104)

        status, answer = _post(
            url, {"dataframe_records": [{"audio": [0.1] * 16000, "sample_rate": 0}]}
        )
        assert status == 400
        # One line with the reason: not MLflow's "Failed to predict data '<the request>'" prefix.
        assert "sample rate 0 Hz" in answer["message"], answer
        assert "\n" not in answer["message"] and len(answer["message"]) < 200, answer

        status, answer = _post(url, good)
        assert status == 200 and np.asarray(answer["predictions"]["body"]).shape == body.shape
    finally:
        stop(server)


def test_the_logged_input_example_is_a_valid_request(served):
    motion = served.predict(input_example(seconds=1.0))
    assert motion["face"].shape == (2, 30, 256)
