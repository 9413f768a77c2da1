"""Fixtures for the dataset tests (scene writer shared with tests/data)."""

from __future__ import annotations

import pytest

from tests.data.conftest import write_scenes


@pytest.fixture
def scene_dir(tmp_path):
    """Two valid 60-frame scenes in the upstream layout."""
    return write_scenes(tmp_path / "person", 2, num_frames=60)
