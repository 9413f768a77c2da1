"""Training checkpoints: one self-verifying file per step, written atomically.

``<dir>/step_{step:08d}.pt`` is a plain ``torch.save`` dict (loadable with ``weights_only=True``)::

    format          "audio2photoreal-pipelines/train-checkpoint"
    format_version  1
    step            the number of optimizer updates behind this state
    ...             the training state (see `training.loop`)
    sha256          digest of every key, value and tensor byte above, in order

A file appears under its final name only by ``os.replace`` of a fsynced temporary in the same
folder, so a kill leaves either the previous set of checkpoints or the new one. The digest catches
what the atomic write cannot: truncation, bit rot or a file copied in half (torch's own zip
reader does not check CRCs).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from audio2photoreal_pipelines.atomic import atomic_write, is_temporary

FORMAT = "audio2photoreal-pipelines/train-checkpoint"
FORMAT_VERSION = 1
_NAME_RE = re.compile(r"step_(\d{8})\.pt")


class CheckpointError(ValueError):
    """A checkpoint file is unreadable, partial, corrupt or of another format."""


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (e.g. the disk is full); the older ones are intact."""


def checkpoint_path(directory: Path, step: int) -> Path:
    """The file that holds the state after `step` updates."""
    return Path(directory) / f"step_{step:08d}.pt"


def write_checkpoint(directory: Path, step: int, state: dict[str, Any], *, keep: int) -> Path:
    """Atomically write `state` as the checkpoint for `step`, then keep only the newest `keep`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "step": step, **state}
    payload["sha256"] = _digest(payload)
    final = checkpoint_path(directory, step)
    try:
        with atomic_write(final) as handle:  # its temporary is gone, and its space freed, after
            torch.save(payload, handle)
    except OSError as error:
        previous = next(_checkpoints_newest_first(directory), None)
        raise CheckpointWriteError(
            error.errno,
            f"{final}: could not write the checkpoint ({error.strerror or error}); "
            f"{'the previous one, ' + previous.name + ', is intact' if previous else 'none older'}",
        ) from error
    for old in list(_checkpoints_newest_first(directory))[keep:]:
        old.unlink(missing_ok=True)
    return final


def read_checkpoint(path: Path) -> dict[str, Any]:
    """Load and verify one checkpoint; raise `CheckpointError` naming the file and the problem."""
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a damaged zip or pickle
        raise CheckpointError(f"{path}: unreadable ({type(error).__name__}: {error})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a training checkpoint of this project")
    if payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: format version {payload.get('format_version')!r}, "
            f"this code reads {FORMAT_VERSION}"
        )
    stored = payload.pop("sha256", None)
    if stored != _digest(payload):
        raise CheckpointError(f"{path}: checksum mismatch (partial or corrupted file)")
    match = _NAME_RE.fullmatch(path.name)
    if match is not None and int(match.group(1)) != payload["step"]:
        raise CheckpointError(f"{path}: holds step {payload['step']}, not the step in its name")
    return payload


def load_latest_checkpoint(
    directory: Path, *, on_skip: Callable[[Path, CheckpointError], None]
) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint in `directory` that verifies; `on_skip` hears about each bad one."""
    for path in _checkpoints_newest_first(Path(directory)):
        try:
            return path, read_checkpoint(path)
        except CheckpointError as error:
            on_skip(path, error)
    return None


def remove_stale_temporaries(directory: Path) -> list[Path]:
    """Delete temporaries left by a writer killed mid-write; return what was removed."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    stale = [p for p in directory.iterdir() if is_temporary(p)]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def _checkpoints_newest_first(directory: Path) -> Iterator[Path]:
    if not directory.is_dir():
        return iter(())
    found = [p for p in directory.iterdir() if _NAME_RE.fullmatch(p.name)]
    return iter(sorted(found, key=lambda p: p.name, reverse=True))


def _digest(obj: Any) -> str:
    hasher = hashlib.sha256()
    _feed(hasher, obj)
    return hasher.hexdigest()


def _feed(hasher: Any, obj: Any) -> None:
    # Lists and tuples hash alike so that a pickle round-trip cannot change the digest.
    if isinstance(obj, torch.Tensor):
        tensor = obj.detach().cpu().contiguous()
        hasher.update(f"T{tensor.dtype}{tuple(tensor.shape)};".encode())
        hasher.update(tensor.reshape(-1).view(torch.uint8).numpy())
    elif isinstance(obj, dict):
        hasher.update(f"D{len(obj)};".encode())
        for key, value in obj.items():
            _feed(hasher, key)
            _feed(hasher, value)
    elif isinstance(obj, list | tuple):
        hasher.update(f"L{len(obj)};".encode())
        for value in obj:
            _feed(hasher, value)
    else:
        hasher.update(f"{type(obj).__name__}:{obj!r};".encode())
