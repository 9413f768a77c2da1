"""The project's JSON and text datasets replace a local file whole or not at all."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from kedro.io import DatasetError
from kedro_datasets.json import JSONDataset as UpstreamJSONDataset

from audio2photoreal_pipelines.datasets import JSONDataset, TextDataset

CATALOG = Path(__file__).resolve().parents[2] / "conf" / "base" / "catalog.yml"


def test_json_and_text_round_trip(tmp_path):
    metrics = JSONDataset(filepath=str(tmp_path / "m" / "metrics.json"))
    metrics.save({"FD_g": 0.78, "rows": [1, 2]})
    assert metrics.load() == {"FD_g": 0.78, "rows": [1, 2]}
    report = TextDataset(filepath=str(tmp_path / "report.md"))
    report.save("| method | FD_g |\n| Ours | 0.78 |\n")
    assert report.load() == "| method | FD_g |\n| Ours | 0.78 |\n"


def test_a_json_save_that_fails_midway_leaves_the_previous_file(tmp_path):
    path = tmp_path / "metrics.json"
    bad = {"FD_g": 0.78, "later": object()}  # fails after "FD_g" has been written
    # kedro-datasets' own JSONDataset streams into the open target: the old file is lost.
    upstream = UpstreamJSONDataset(filepath=str(path))
    upstream.save({"previous": True})
    with pytest.raises(DatasetError):
        upstream.save(bad)
    with pytest.raises(json.JSONDecodeError):
        json.loads(path.read_text())

    ours = JSONDataset(filepath=str(path))
    ours.save({"previous": True})
    with pytest.raises(DatasetError, match="not JSON serializable"):
        ours.save(bad)
    assert ours.load() == {"previous": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_a_text_save_that_fails_on_the_disk_leaves_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "metrics.md"
    report = TextDataset(filepath=str(path))
    report.save("previous table\n")

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(DatasetError, match="No space left"):
        report.save("a new table that never fully reaches the disk\n")
    assert path.read_text() == "previous table\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.md"]


def test_the_catalog_uses_the_atomic_datasets_for_every_json_and_text_file():
    types = {
        entry.get("type")
        for entry in yaml.safe_load(CATALOG.read_text()).values()
        if isinstance(entry, dict)
    }
    assert "audio2photoreal_pipelines.datasets.JSONDataset" in types
    assert "audio2photoreal_pipelines.datasets.TextDataset" in types
    assert not types & {"json.JSONDataset", "text.TextDataset"}
