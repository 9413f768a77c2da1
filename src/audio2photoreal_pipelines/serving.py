"""One trained person as an MLflow pyfunc model: a conversation's audio in, motion out.

`PersonSampler` bundles the VQ, guide, face and body models that were evaluated together, the
person's ``data_stats`` and the sampling settings, and samples with the same code as the
``sample`` pipeline (`user_audio_inputs`, then `sample_clips`). ``mlflow models serve`` exposes
it as ``POST /invocations``; a request the model cannot use gets HTTP 400 with the reason.

Request fields (one record; all optional, but one of ``wav_base64`` and ``audio`` is needed):

    wav_base64       a wav (or flac, ogg) file's bytes, base64: mono is the person
    audio            the person's samples (channel 0), floats at ``sample_rate``
    partner_audio    the partner's samples (channel 1), as long as ``audio``
    sample_rate      Hz of ``audio`` (default 48000)
    num_repetitions, seed, face_guidance, body_guidance   override the bundled settings

Response: ``face`` (R, T, 256) expression codes and ``body`` (R, T, 104) joint angles, raw units,
30 fps.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import soundfile as sf
import torch
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.types import ColSpec, DataType, Schema
from mlflow.types.schema import Array

from audio2photoreal_pipelines.data.normalise import (
    audio_mean_std,
    denormalise,
    motion_mean_std,
    normalise,
)
from audio2photoreal_pipelines.data.stats import load_data_stats, save_data_stats
from audio2photoreal_pipelines.data.user_audio import UserAudioError, prepare_user_audio
from audio2photoreal_pipelines.models.audio import VqWav2VecFeatures
from audio2photoreal_pipelines.models.generate import SamplingConfig, generate_body, generate_face
from audio2photoreal_pipelines.parameter_block import Count, ParameterError, PositiveCount
from audio2photoreal_pipelines.parameters import AudioFeatureParams
from audio2photoreal_pipelines.training.device import select_device
from audio2photoreal_pipelines.units import SAMPLE_RATE, SAMPLES_PER_FRAME

logger = logging.getLogger(__name__)

KINDS = ("vq", "guide", "face", "pose")
MAX_SECONDS = 60.0  # longest request: a minute of audio (sampling time grows with length)
_INT_FIELDS = ("num_repetitions", "seed", "sample_rate")
_FLOAT_FIELDS = ("face_guidance", "body_guidance")
MAX_REPETITIONS = 10
# Steps when a request switches sampler: DPM-Solver++ 20 is within 10 % of DDIM 500 on every
# metric (bench_sampler_sweep, as conf/base's sample.steps); DDIM 100 is upstream's demo.
SAMPLER_STEPS = {"dpmsolver": 20, "ddim": 100}

SIGNATURE = ModelSignature(
    inputs=Schema(
        [
            ColSpec(DataType.string, "wav_base64", required=False),
            ColSpec(Array(DataType.double), "audio", required=False),
            ColSpec(Array(DataType.double), "partner_audio", required=False),
            ColSpec(DataType.long, "sample_rate", required=False),
            ColSpec(DataType.long, "num_repetitions", required=False),
            ColSpec(DataType.long, "seed", required=False),
            ColSpec(DataType.double, "face_guidance", required=False),
            ColSpec(DataType.double, "body_guidance", required=False),
        ]
    )
)


class SampleParams(SamplingConfig):
    """``params:sample``: the sampler's settings, and which clips, with what seed, on what device.

    ``audio`` and ``model_alias`` are read by the catalog (``runtime_params``: the ``user_audio``
    file and the registry alias); ``--params sample.audio=`` also merges them here.
    """

    audio: str | None = None
    max_clips: PositiveCount | None = None
    seed: Count = 10
    device: str = "auto"
    model_alias: str = "champion"


def sample_clips(
    models: Mapping[str, torch.nn.Module],
    inputs: Mapping[str, np.ndarray],
    data_stats: Mapping[str, np.ndarray],
    sample: SampleParams,
) -> dict[str, np.ndarray]:
    """``num_repetitions`` samples of each clip of `inputs`, in raw units.

    ``models`` maps vq, guide, face and pose to their modules. Returns repetition-major
    body (R, S, T, 104), guide_poses (R, S, K, 104), face (R, S, T, 256) and lengths (S,).
    """
    device = select_device(sample.device)
    generator = torch.Generator(device=device).manual_seed(sample.seed)
    features = torch.from_numpy(inputs["audio_features"]).to(device)
    length_mask = torch.from_numpy(inputs["length_mask"]).to(device)
    vq, guide, face, pose = (models[kind].to(device).eval() for kind in KINDS)
    logger.info(
        "Sampling %d clip(s) x %d repetitions (%s, %d steps) on %s",
        length_mask.shape[0],
        sample.num_repetitions,
        sample.sampler,
        sample.steps,
        device,
    )
    with torch.inference_mode():
        body, guide_poses = generate_body(vq, guide, pose, features, length_mask, sample, generator)
        face_codes = generate_face(face, features, length_mask, sample, generator)
    pose_mean, pose_std = motion_mean_std(data_stats, "body")
    code_mean, code_std = motion_mean_std(data_stats, "face")
    return {
        "body": denormalise(body.cpu().numpy(), pose_mean, pose_std),
        "guide_poses": denormalise(guide_poses.cpu().numpy(), pose_mean, pose_std),
        "face": denormalise(face_codes.cpu().numpy(), code_mean, code_std),
        "lengths": inputs["length_mask"].sum(axis=1),
    }


def user_audio_inputs(
    audio: np.ndarray,
    data_stats: Mapping[str, np.ndarray],
    feature_params: AudioFeatureParams,
    vq_wav2vec: VqWav2VecFeatures | None = None,
) -> dict[str, np.ndarray]:
    """Model inputs for one clip of raw audio (N, 2) at 48 kHz: the ``sample`` pipeline's form.
    ``vq_wav2vec`` is the catalog's extractor when the features are upstream's.

    Returns normalised audio (1, N, 2), audio_features (1, La, C) and length_mask (1, T).
    """
    mean, std = audio_mean_std(data_stats)
    waveform = torch.from_numpy(normalise(audio, mean, std))[None]
    with torch.inference_mode():
        features = feature_params.extractor(vq_wav2vec)(waveform)
    frames = audio.shape[0] // SAMPLES_PER_FRAME
    return {
        "audio": waveform.numpy(),
        "audio_features": features.numpy(),
        "length_mask": np.ones((1, frames), dtype=bool),
    }


class RequestError(MlflowException):
    """A bad request: the scoring server answers HTTP 400 with exactly this one-line reason.

    MLflow's scoring server rewrites the message of any MlflowException raised by `predict` to
    "Failed to predict data '<the whole request>'. Error: ..."; with a base64 wav that is
    megabytes in one answer. The message is therefore fixed when the error is made.
    """

    @property
    def message(self) -> str:
        return self._reason

    @message.setter
    def message(self, value: str) -> None:
        if not hasattr(self, "_reason"):  # set once, by MlflowException.__init__
            self._reason = value


def bad_request(message: str) -> RequestError:
    """An error the scoring server answers with HTTP 400 and this message."""
    return RequestError(message, error_code=INVALID_PARAMETER_VALUE)


def request_audio(record: Mapping[str, Any], seed: int) -> np.ndarray:
    """The request's audio as (N, 2) float32 at 48 kHz, or a 400 naming the problem."""
    try:
        if _given(record.get("wav_base64")):
            try:
                data = base64.b64decode(str(record["wav_base64"]), validate=True)
            except (binascii.Error, ValueError):
                raise bad_request("wav_base64: not valid base64") from None
            if not data:
                raise bad_request("wav_base64: empty")
            try:
                audio, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
            except (RuntimeError, sf.LibsndfileError):
                raise bad_request("wav_base64: not a readable audio file") from None
            name = "wav_base64"
        elif _given(record.get("audio")):
            channels = [_samples(record, "audio")]
            if _given(record.get("partner_audio")):
                channels.append(_samples(record, "partner_audio"))
                if channels[1].shape != channels[0].shape:
                    raise bad_request("partner_audio: not as long as audio")
            audio = np.stack(channels, axis=1)
            rate = _number(record, "sample_rate", int, SAMPLE_RATE)
            name = "audio"
        else:
            fields = sorted(k for k, v in record.items() if _given(v))
            raise bad_request(f"no audio: send wav_base64 or audio (got fields {fields})")
        if rate > 0 and audio.shape[0] / rate > MAX_SECONDS:
            raise bad_request(
                f"{name}: {audio.shape[0] / rate:.1f} s is longer than the {MAX_SECONDS:.0f} s "
                "limit"
            )
        return prepare_user_audio(audio, rate, name=name, seed=seed)
    except UserAudioError as err:
        raise bad_request(str(err)) from None


class PersonSampler(mlflow.pyfunc.PythonModel):
    """Audio -> face codes and body poses of one trained person (see the module docstring)."""

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        self.models = {
            kind: torch.load(context.artifacts[kind], map_location="cpu", weights_only=False).eval()
            for kind in KINDS
        }
        self.data_stats = load_data_stats(context.artifacts["data_stats"])
        settings = json.loads(Path(context.artifacts["settings"]).read_text())
        self.sample = SampleParams.model_validate(settings["sample"])
        self.audio_features = AudioFeatureParams.model_validate(settings["audio_features"])

    # No type hints: MLflow would read them as a schema of its own, and SIGNATURE is the schema.
    def predict(self, context, model_input, params=None):
        """One record (see the module docstring) -> {"face": (R, T, 256), "body": (R, T, 104)}."""
        samples, _ = self.generate(_one_record(model_input))
        return {"face": samples["face"][:, 0], "body": samples["body"][:, 0]}

    def generate(
        self, record: Mapping[str, Any], *, sampler: str | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """`sample_clips`' samples for one request record, and the model inputs made from it.

        ``sampler`` ("ddim" or "dpmsolver") overrides the bundled one with its own step count.
        """
        sample = self.sample.as_dict()
        if sampler is not None and sampler != sample["sampler"]:
            sample.update(sampler=sampler, steps=SAMPLER_STEPS[sampler])
        for key, kind in [(k, int) for k in _INT_FIELDS[:2]] + [(k, float) for k in _FLOAT_FIELDS]:
            sample[key] = _number(record, key, kind, sample[key])
        if not 1 <= sample["num_repetitions"] <= MAX_REPETITIONS:
            raise bad_request(f"num_repetitions must be 1 ... {MAX_REPETITIONS}")
        try:
            settings = SampleParams.model_validate(sample)
        except ParameterError as err:
            raise bad_request(str(err)) from None
        audio = request_audio(record, settings.seed)
        inputs = user_audio_inputs(audio, self.data_stats, self.audio_features)
        return sample_clips(self.models, inputs, self.data_stats, settings), inputs


def save_sampler_artifacts(
    folder: Path,
    modules: Mapping[str, torch.nn.Module],
    data_stats: Mapping[str, np.ndarray],
    sample: SampleParams,
    audio_features: AudioFeatureParams,
) -> dict[str, str]:
    """Write what `PersonSampler.load_context` reads into ``folder``; return the artifact paths."""
    if audio_features.vq_wav2vec_checkpoint:
        raise ValueError(
            "the servable model supports log-mel audio features only; "
            "audio_features.vq_wav2vec_checkpoint is set"
        )
    folder.mkdir(parents=True, exist_ok=True)
    artifacts = {}
    for kind in KINDS:
        path = folder / f"{kind}.pt"
        torch.save(modules[kind].cpu().eval(), path)
        artifacts[kind] = str(path)
    save_data_stats(dict(data_stats), folder / "data_stats.pth")
    settings = {
        "sample": sample.model_dump(mode="json", exclude={"audio", "max_clips"}),
        "audio_features": audio_features.as_dict(),
    }
    (folder / "settings.json").write_text(json.dumps(settings, indent=2))
    artifacts["data_stats"] = str(folder / "data_stats.pth")
    artifacts["settings"] = str(folder / "settings.json")
    return artifacts


def input_example(seconds: float = 1.0) -> pd.DataFrame:
    """A one-record request: ``seconds`` of a 220 Hz tone as a base64 wav at 16 kHz."""
    rate = 16_000
    t = np.arange(int(seconds * rate)) / rate
    buffer = io.BytesIO()
    sf.write(buffer, (0.3 * np.sin(2 * math.pi * 220 * t)).astype(np.float32), rate, format="WAV")
    wav = base64.b64encode(buffer.getvalue()).decode("ascii")
    return pd.DataFrame([{"wav_base64": wav, "num_repetitions": 2}])


def _one_record(model_input: pd.DataFrame | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(model_input, pd.DataFrame):
        if len(model_input) == 0 or model_input.columns.empty:
            # The schema drops fields it does not know: e.g. a misspelt field name.
            raise bad_request("no audio: send wav_base64 or audio (no known field was given)")
        if len(model_input) != 1:
            raise bad_request(f"send one record per request, got {len(model_input)}")
        return {k: v for k, v in model_input.iloc[0].to_dict().items()}
    if isinstance(model_input, Mapping):
        # Tensor-style input ({"inputs": {field: [value]}}): one value per field.
        arrays = ("audio", "partner_audio")
        return {
            k: v[0] if k not in arrays and isinstance(v, list | np.ndarray) and len(v) else v
            for k, v in model_input.items()
        }
    raise bad_request(f"expected one record of fields, got {type(model_input).__name__}")


def _given(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, float) and math.isnan(value):
        return False
    if isinstance(value, str | bytes):
        return len(value) > 0
    return np.size(value) > 0


def _samples(record: Mapping[str, Any], key: str) -> np.ndarray:
    """The field as a 1-d float64 array of samples, or a 400 naming it."""
    try:
        samples = np.asarray(record[key], dtype=np.float64)
    except (TypeError, ValueError):
        raise bad_request(f"{key}: not a list of numbers") from None
    if samples.ndim != 1:
        raise bad_request(f"{key}: expected one list of samples, got shape {samples.shape}")
    return samples


def _number(record: Mapping[str, Any], key: str, kind: type, default: Any) -> Any:
    value = record.get(key)
    if not _given(value):
        return default
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise bad_request(f"{key}: not a number ({value!r})") from None
    if isinstance(number, float) and not math.isfinite(number):
        raise bad_request(f"{key}: not a finite number")
    return number
