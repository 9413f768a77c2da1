"""The one way this project writes a file: whole or not at all, and durably.

The bytes go to a temporary beside the final path, are fsynced, and replace the final path by
``os.replace``; the folder is then fsynced so that the rename itself survives a power cut. A
crash or kill mid-write leaves the previous file, never a partial one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

TEMP_MARK = ".tmp-"


def is_temporary(path: Path) -> bool:
    """Whether ``path`` is a temporary `atomic_write` leaves behind if its process is killed."""
    return path.name.startswith(".") and TEMP_MARK in path.name


@contextmanager
def atomic_write(final: str | os.PathLike) -> Iterator[IO[bytes]]:
    """A binary handle whose bytes replace ``final`` only when the block ends without error."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    temp = final.with_name(f".{final.name}{TEMP_MARK}{os.getpid()}")
    try:
        with open(temp, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, final)
        _fsync_directory(final.parent)
    finally:
        temp.unlink(missing_ok=True)


def _fsync_directory(directory: Path) -> None:
    # Directories cannot be opened for fsync like this on Windows.
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
