"""The MLflow registry datasets, on a throw-away sqlite store per test."""

from __future__ import annotations

import shutil

import mlflow
import pytest
import torch
from kedro.io import DatasetError
from mlflow import MlflowClient

from audio2photoreal_pipelines.datasets.registered_model import (
    RegisteredModelDataset,
    RegistryChampionsDataset,
    TrainedModel,
    weights_sha256,
)


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory):
    """An sqlite MLflow store with its tables made once (the migrations take seconds)."""
    path = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{path}")
    MlflowClient().search_experiments()
    mlflow.set_tracking_uri(previous)
    return path


@pytest.fixture
def registry(tmp_path, monkeypatch, empty_store):
    """A fresh store in tmp_path, the working directory; active runs are ended afterwards."""
    shutil.copy(empty_store, tmp_path / "mlflow.db")
    monkeypatch.chdir(tmp_path)
    # mlflow infers pip requirements in a subprocess (10-20 s per model here): not under test.
    monkeypatch.setattr(
        mlflow.models, "infer_pip_requirements", lambda *args, fallback=None, **kw: fallback
    )
    previous = mlflow.get_tracking_uri()
    # Artifacts land in the template's folder (the default experiment's absolute location); no
    # set_experiment, whose process-wide active experiment would outlive this store.
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    yield MlflowClient()
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(previous)


def _trained(seed: int, **tags) -> TrainedModel:
    torch.manual_seed(seed)
    return TrainedModel(module=torch.nn.Linear(3, 2), tags=tags)


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    pairs = zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    return all(torch.equal(x, y) for x, y in pairs)


def test_save_registers_a_tagged_version_with_its_checkpoint(registry, tmp_path):
    checkpoint = tmp_path / "last.pt"
    checkpoint.write_bytes(b"checkpoint bytes")
    model = TrainedModel(
        module=torch.nn.Linear(3, 2),
        tags={"data_stats": "abc123", "steps": 6},
        checkpoint=checkpoint,
    )

    RegisteredModelDataset(model_name="a2p-T-vq", artifact_name="vq").save(model)

    version = registry.get_model_version("a2p-T-vq", "1")
    assert version.tags["data_stats"] == "abc123" and version.tags["steps"] == "6"
    assert "git_commit" in version.tags
    artifacts = registry.list_artifacts(version.run_id, "checkpoints/vq")
    assert [a.path for a in artifacts] == ["checkpoints/vq/last.pt"]
    assert mlflow.active_run() is None  # the run it started for itself is closed


def test_load_returns_the_version_this_dataset_saved(registry):
    dataset = RegisteredModelDataset(model_name="a2p-T-face")
    first, second = _trained(0), _trained(1)
    dataset.save(first)
    registry.set_registered_model_alias("a2p-T-face", "champion", "1")
    dataset.save(second)

    loaded = dataset.load()

    assert (loaded.name, loaded.version) == ("a2p-T-face", "2")
    assert loaded.identity() == ["a2p-T-face", "2"]
    assert _same_weights(loaded.module, second.module)


def test_a_fresh_dataset_loads_the_champion_else_the_newest(registry):
    RegisteredModelDataset(model_name="a2p-T-pose").save(_trained(0))
    RegisteredModelDataset(model_name="a2p-T-pose").save(_trained(1))

    assert RegisteredModelDataset(model_name="a2p-T-pose").load().version == "2"
    registry.set_registered_model_alias("a2p-T-pose", "champion", "1")
    champion = RegisteredModelDataset(model_name="a2p-T-pose").load()
    assert champion.version == "1"
    assert _same_weights(champion.module, _trained(0).module)


def test_loading_an_unknown_model_names_it(registry):
    with pytest.raises(DatasetError, match="no model 'a2p-T-nothing'"):
        RegisteredModelDataset(model_name="a2p-T-nothing").load()


def test_champions_round_trip_moves_the_alias_only_on_promotion(registry):
    names = {"vq": "a2p-T-vq", "face": "a2p-T-face"}
    for name in names.values():
        RegisteredModelDataset(model_name=name).save(_trained(0))
    champions = RegistryChampionsDataset(model_names=names)
    assert champions.load() == {
        key: {"name": name, "version": None, "metrics": {}} for key, name in names.items()
    }

    champions.save(
        {
            "vq": {
                "name": "a2p-T-vq",
                "version": "1",
                "metrics": {"FD_g": 1.5, "FD_k": 0.25},
                "promote": True,
                "reason": "no champion yet",
            },
            "face": {
                "name": "a2p-T-face",
                "version": "1",
                "metrics": {"face_L2": 3.0},
                "promote": False,
                "reason": "worse on face_L2",
            },
        }
    )

    loaded = champions.load()
    assert loaded["vq"] == {
        "name": "a2p-T-vq",
        "version": "1",
        "metrics": {"FD_g": 1.5, "FD_k": 0.25},
    }
    assert loaded["face"]["version"] is None
    face = registry.get_model_version("a2p-T-face", "1")
    assert face.tags["metric.face_L2"] == "3.0" and face.tags["promotion"] == "worse on face_L2"


def test_identical_weights_reuse_their_version_instead_of_registering_again(registry, caplog):
    first = RegisteredModelDataset(model_name="a2p-T-vq")
    first.save(_trained(0, steps="10"))
    rerun = RegisteredModelDataset(model_name="a2p-T-vq")
    with caplog.at_level("INFO"):
        rerun.save(_trained(0, steps="10"))
    assert [str(v.version) for v in registry.search_model_versions("name='a2p-T-vq'")] == ["1"]
    assert "already complete" in caplog.text and "version 1, reused" in caplog.text
    assert rerun.load().version == "1"

    RegisteredModelDataset(model_name="a2p-T-vq").save(_trained(1))
    assert len(registry.search_model_versions("name='a2p-T-vq'")) == 2


def test_weights_digest_changes_with_any_value_and_not_with_the_object():
    a, b = _trained(0).module, _trained(0).module
    assert weights_sha256(a) == weights_sha256(b)
    with torch.no_grad():
        b.bias[0] += 1e-6
    assert weights_sha256(a) != weights_sha256(b)


def test_weights_digest_covers_scalar_buffers():
    a, b = _trained(0).module, _trained(0).module
    a.register_buffer("exponent", torch.tensor(1.0))  # 0-d, as the Wiener gain's envelope
    b.register_buffer("exponent", torch.tensor(1.5))
    assert weights_sha256(a) != weights_sha256(b)
