"""Base of the read-only inputs a user may name or leave out (``filepath: null`` loads None)."""

from __future__ import annotations

from typing import Any

from kedro.io import AbstractDataset, DatasetError


class OptionalInputDataset(AbstractDataset[None, Any]):
    """Read-only: ``read(filepath)`` of the file at ``filepath``, or None when none is given."""

    def __init__(self, *, filepath: str | None = None, metadata: dict[str, Any] | None = None):
        self._filepath = filepath or None
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath}

    def load(self) -> Any:
        return None if self._filepath is None else self.read(self._filepath)

    def read(self, filepath: str) -> Any:
        raise NotImplementedError

    def save(self, data: None) -> None:
        raise DatasetError(f"{type(self).__name__} is read-only: it reads a file the user names")
