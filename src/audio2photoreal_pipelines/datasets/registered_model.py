"""Kedro datasets backed by the MLflow model registry.

kedro-mlflow's ``MlflowModelTrackingDataset`` registers a model but cannot tag the new version
or hand the same run's version back to a later node, and ``MlflowModelRegistryDataset`` only
loads. The pipelines need all three (register, tag with data stats and commit, reload the version
just trained), so these two small datasets wrap the MLflow client directly.
"""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import tempfile
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import mlflow
import torch
from kedro.io import AbstractDataset, DatasetError
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from audio2photoreal_pipelines.serving import (
    KINDS,
    SIGNATURE,
    PersonSampler,
    input_example,
    save_sampler_artifacts,
)

logger = logging.getLogger(__name__)

METRIC_TAG_PREFIX = "metric."
WEIGHTS_TAG = "weights_sha256"


@dataclass
class TrainedModel:
    """A trained module with what the registry should record about it."""

    module: torch.nn.Module
    tags: dict[str, str] = field(default_factory=dict)
    checkpoint: Path | None = None


@dataclass(frozen=True)
class RegisteredModule:
    """A module loaded from the registry, with the name and version it was registered under."""

    module: torch.nn.Module
    name: str
    version: str

    def identity(self) -> list[str]:
        """[registered name, version]: what a model trained on this one depends on."""
        return [self.name, self.version]


def git_commit() -> str:
    """The project's current commit, or ``unknown`` outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip()


# Stated rather than inferred: MLflow infers requirements by importing the model in a
# subprocess, which costs 6-20 s per model on a small machine.
_MODEL_REQUIREMENTS = (
    "torch",
    "einops",
    "vector-quantize-pytorch",
    "rotary-embedding-torch",
    "diffusers",
    "audio2photoreal-pipelines",
)


def _pip_requirements() -> list[str]:
    return [f"{name}=={version(name).split('+')[0]}" for name in _MODEL_REQUIREMENTS]


def weights_sha256(module: torch.nn.Module) -> str:
    """A digest of every parameter and buffer: names, dtypes, shapes and values."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        # reshape: a 0-d tensor (a scalar buffer) cannot be viewed as bytes as it is.
        raw = tensor.reshape(-1).view(torch.uint8)
        digest.update(raw.numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def _versions(client: MlflowClient, name: str) -> list:
    try:
        found = client.search_model_versions(f"name='{name}'")
    except MlflowException:
        return []
    return sorted(found, key=lambda v: int(v.version))


class RegisteredModelDataset(AbstractDataset[TrainedModel, RegisteredModule]):
    """Saves a :class:`TrainedModel` as a new registry version; loads a version back as a module.

    ``load`` returns, in order of preference: the version this dataset saved in the current run, the
    version under ``alias``, or the newest version, as a ``RegisteredModule`` so that later nodes
    can say which version they used.

    Weights identical to a registered version's (tag ``weights_sha256``), e.g. a re-run whose
    training resumed a finished checkpoint, are not registered again: that version is reused and
    counts as the one saved in this run.
    """

    def __init__(
        self,
        *,
        model_name: str,
        alias: str | None = "champion",
        artifact_name: str = "model",
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._model_name = model_name
        self._alias = alias
        self._artifact_name = artifact_name
        self._saved_version: str | None = None
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"model_name": self._model_name, "alias": self._alias}

    def _exists(self) -> bool:
        return self._saved_version is not None or bool(_versions(MlflowClient(), self._model_name))

    def save(self, data: TrainedModel) -> None:
        digest = weights_sha256(data.module)
        client = MlflowClient()
        for existing in _versions(client, self._model_name):
            if existing.tags.get(WEIGHTS_TAG) == digest:
                self._saved_version = str(existing.version)
                logger.info(
                    "%s: training was already complete; its weights are version %s, reused "
                    "without registering a duplicate",
                    self._model_name,
                    existing.version,
                )
                return
        started_here = mlflow.active_run() is None
        if started_here:
            mlflow.start_run(run_name=self._model_name)
        try:
            info = mlflow.pytorch.log_model(
                data.module.cpu(),
                name=self._artifact_name,
                registered_model_name=self._model_name,
                serialization_format="pickle",
                pip_requirements=_pip_requirements(),
            )
            if data.checkpoint is not None:
                mlflow.log_artifact(
                    str(data.checkpoint), artifact_path=f"checkpoints/{self._artifact_name}"
                )
        finally:
            if started_here:
                mlflow.end_run()
        version = str(info.registered_model_version)
        tags = {"git_commit": git_commit(), **data.tags, WEIGHTS_TAG: digest}
        for key, value in tags.items():
            client.set_model_version_tag(self._model_name, version, key, str(value))
        self._saved_version = version
        logger.info("Registered %s version %s", self._model_name, version)

    def load(self) -> RegisteredModule:
        client = MlflowClient()
        version = self._saved_version
        if version is None and self._alias is not None:
            try:
                version = client.get_model_version_by_alias(self._model_name, self._alias).version
            except MlflowException:
                version = None
        if version is None:
            found = _versions(client, self._model_name)
            if not found:
                raise DatasetError(
                    f"The MLflow registry has no model '{self._model_name}'. Train it first, "
                    f"e.g. `kedro run --pipelines train_<model>`."
                )
            version = found[-1].version
            logger.info(
                "No '%s' alias on %s; using its newest version %s",
                self._alias,
                self._model_name,
                version,
            )
        module = mlflow.pytorch.load_model(
            f"models:/{self._model_name}/{version}", map_location="cpu"
        )
        return RegisteredModule(module=module, name=self._model_name, version=str(version))


class RegistryChampionsDataset(AbstractDataset[dict, dict]):
    """The ``champion`` alias of several registered models, with the metrics it was promoted on.

    ``load`` gives ``{key: {"name", "version", "metrics"}}`` for the current champions (version
    ``None`` when there is none). ``save`` takes ``{key: {"name", "version", "metrics",
    "promote", "reason"}}``: it records the metrics as tags on each candidate version and moves
    the alias to the candidates marked for promotion.
    """

    def __init__(
        self,
        *,
        model_names: dict[str, str],
        alias: str = "champion",
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._model_names = dict(model_names)
        self._alias = alias
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"model_names": self._model_names, "alias": self._alias}

    def load(self) -> dict:
        client = MlflowClient()
        champions = {}
        for key, name in self._model_names.items():
            try:
                mv = client.get_model_version_by_alias(name, self._alias)
            except MlflowException:
                champions[key] = {"name": name, "version": None, "metrics": {}}
                continue
            metrics = {
                k[len(METRIC_TAG_PREFIX) :]: float(v)
                for k, v in mv.tags.items()
                if k.startswith(METRIC_TAG_PREFIX)
            }
            champions[key] = {"name": name, "version": str(mv.version), "metrics": metrics}
        return champions

    def save(self, data: dict) -> None:
        client = MlflowClient()
        if mlflow.active_run() is not None:
            mlflow.log_dict(data, "promotions.json")
        for decision in data.values():
            name, version = decision["name"], str(decision["version"])
            for metric, value in decision["metrics"].items():
                client.set_model_version_tag(name, version, METRIC_TAG_PREFIX + metric, str(value))
            client.set_model_version_tag(name, version, "promotion", decision["reason"])
            if decision["promote"]:
                client.set_registered_model_alias(name, self._alias, version)
                logger.info(
                    "Promoted %s version %s to '%s': %s",
                    name,
                    version,
                    self._alias,
                    decision["reason"],
                )
            else:
                logger.info("Kept the '%s' of %s: %s", self._alias, name, decision["reason"])


class RegisteredSamplerDataset(AbstractDataset[dict, Any]):
    """A person's servable sampler (`serving.PersonSampler`) as a registered pyfunc model.

    ``save`` takes ``{"components": {kind: {"name", "version"}}, "data_stats", "sample",
    "audio_features", "champion"}`` (sample and audio_features are their typed parameter blocks):
    it bundles those registered versions of the four models with the stats and settings, registers
    a new version (or reuses the one that bundles the same versions and settings) and points
    ``alias`` at it when ``champion`` is true. ``load`` gives the pyfunc model under ``alias``.
    """

    def __init__(
        self,
        *,
        model_name: str,
        alias: str = "champion",
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._model_name = model_name
        self._alias = alias
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"model_name": self._model_name, "alias": self._alias}

    def save(self, data: dict) -> None:
        components = {kind: data["components"][kind] for kind in KINDS}
        missing = sorted(k for k, c in components.items() if c.get("version") is None)
        if missing:
            raise DatasetError(f"{self._model_name}: no registered version of {missing} to bundle")
        identity = json.dumps(
            {
                "components": {k: f"{c['name']}/{c['version']}" for k, c in components.items()},
                "sample": data["sample"].as_dict(),
                "audio_features": data["audio_features"].as_dict(),
            },
            sort_keys=True,
        )
        digest = hashlib.sha256(identity.encode()).hexdigest()
        client = MlflowClient()
        version = next(
            (
                str(v.version)
                for v in _versions(client, self._model_name)
                if v.tags.get("bundle_sha256") == digest
            ),
            None,
        )
        if version is None:
            version = self._register(data, components, digest)
        else:
            logger.info(
                "%s version %s already bundles these models; reused", self._model_name, version
            )
        if data["champion"]:
            client.set_registered_model_alias(self._model_name, self._alias, version)
            logger.info("%s version %s is '%s'", self._model_name, version, self._alias)

    def _register(self, data: dict, components: dict, digest: str) -> str:
        modules = {
            kind: mlflow.pytorch.load_model(
                f"models:/{c['name']}/{c['version']}", map_location="cpu"
            )
            for kind, c in components.items()
        }
        started_here = mlflow.active_run() is None
        if started_here:
            mlflow.start_run(run_name=self._model_name)
        try:
            with tempfile.TemporaryDirectory() as folder:
                artifacts = save_sampler_artifacts(
                    Path(folder),
                    modules,
                    data["data_stats"],
                    data["sample"],
                    data["audio_features"],
                )
                info = mlflow.pyfunc.log_model(
                    name="sampler",
                    python_model=PersonSampler(),
                    artifacts=artifacts,
                    signature=SIGNATURE,
                    input_example=input_example(),
                    registered_model_name=self._model_name,
                    pip_requirements=_pip_requirements(),
                )
        finally:
            if started_here:
                mlflow.end_run()
        version = str(info.registered_model_version)
        client = MlflowClient()
        tags = {
            "git_commit": git_commit(),
            "bundle_sha256": digest,
            **{f"component.{k}": f"{c['name']}/{c['version']}" for k, c in components.items()},
        }
        for key, value in tags.items():
            client.set_model_version_tag(self._model_name, version, key, value)
        logger.info("Registered %s version %s", self._model_name, version)
        return version

    def load(self) -> Any:
        return mlflow.pyfunc.load_model(f"models:/{self._model_name}@{self._alias}")
