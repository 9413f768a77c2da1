"""The ``ingest`` pipeline run end to end through a KedroSession on a tiny synthetic person."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from audio2photoreal_pipelines.data.stats import load_data_stats
from tests.conftest import run_session


def _run_ingest(project: Path, **params) -> None:
    run_session(project, ["ingest"], **params)


@pytest.mark.slow
def test_ingest_session_writes_every_catalogued_output(project_copy: Path) -> None:
    _run_ingest(project_copy)
    data = project_copy / "data"
    person = data / "01_raw" / "SYN001"
    assert sorted(p.name for p in person.glob("*_audio.wav"))[0] == "scene01_audio.wav"
    scenes = json.loads((data / "02_intermediate" / "SYN001" / "scenes.json").read_text())
    assert "scene02" not in scenes, "the faceless scene must be dropped"
    assert len(scenes) == 7
    splits = json.loads((data / "03_primary" / "SYN001" / "splits.json").read_text())
    assert [len(splits[k]) for k in ("train", "val", "test")] == [1, 2, 4]
    assert splits["test"] == sorted(scenes)[-4:]
    stats = load_data_stats(data / "05_model_input" / "SYN001" / "data_stats.pth")
    assert stats["pose_mean"].shape == (104,) and stats["pose_mean"].dtype == np.float64
    assert stats["audio_std_flat"].dtype == np.float32
    chunks = json.loads((data / "03_primary" / "SYN001" / "test_chunks.json").read_text())
    assert chunks and all(c["scene"] in splits["test"] and c["length"] == 600 for c in chunks)
    with np.load(data / "04_feature" / "SYN001" / "audio_features.npz") as features:
        assert set(features.files) == set(scenes)
        first = features[sorted(scenes)[0]]
        frames = scenes[sorted(scenes)[0]]["num_frames"]
        assert first.shape == (frames * 1600 // 480 + 1, 80)
    assert (
        "pose_std_flat" in (data / "08_reporting" / "SYN001" / "data_stats_summary.md").read_text()
    )


@pytest.mark.slow
def test_ingest_reads_a_local_folder_in_the_upstream_layout(
    project_copy: Path, tmp_path: Path
) -> None:
    _run_ingest(project_copy)
    generated = project_copy / "data" / "01_raw" / "SYN001"
    local_root = tmp_path / "elsewhere"
    shutil.copytree(generated, local_root / "RLW999")
    _run_ingest(
        project_copy,
        **{"dataset.source": "local", "dataset.root": str(local_root), "dataset.person": "RLW999"},
    )
    intermediate = project_copy / "data" / "02_intermediate"
    scenes = json.loads((intermediate / "RLW999" / "scenes.json").read_text())
    assert all("RLW999" in entry["audio_path"] for entry in scenes.values())
    # The default person's processed data is its own, untouched by the second person's ingest.
    default = json.loads((intermediate / "SYN001" / "scenes.json").read_text())
    assert all("/SYN001/" in entry["audio_path"] for entry in default.values())
