"""atomic_write: the one writer every file of the project goes through."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import audio2photoreal_pipelines
from audio2photoreal_pipelines.atomic import atomic_write, is_temporary


def test_a_write_that_fails_leaves_the_previous_file_and_no_temporary(tmp_path):
    final = tmp_path / "stats.pth"
    final.write_bytes(b"previous")
    with pytest.raises(RuntimeError), atomic_write(final) as handle:
        handle.write(b"half")
        raise RuntimeError("killed mid-write")
    assert final.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stats.pth"]


def test_a_write_replaces_the_file_after_fsyncing_it_and_its_folder(tmp_path, monkeypatch):
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))
    final = tmp_path / "new" / "file.npy"
    with atomic_write(final) as handle:
        handle.write(b"whole")
        (temporary,) = final.parent.iterdir()
        assert is_temporary(temporary) and not final.exists()
    assert final.read_bytes() == b"whole"
    assert len(synced) == 2  # the file, then the folder that holds the rename


def test_no_module_renames_files_into_place_by_itself():
    # The resumable download keeps its own partial file between attempts, so it renames it.
    package = Path(audio2photoreal_pipelines.__file__).parent
    renaming = sorted(
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if "os.replace(" in path.read_text()
    )
    assert renaming == ["atomic.py", "data/download.py"]
