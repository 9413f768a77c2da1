"""``NpzDataset``: dict of numpy arrays <-> a ``.npz`` file (never pickled)."""

from __future__ import annotations

import numpy as np

from audio2photoreal_pipelines.datasets._file_dataset import FileDataset


class NpzDataset(FileDataset):
    """``dict[str, ndarray]`` as ``.npz``, e.g. per-scene face masks or audio features.

    ``save_args: {compressed: true}`` writes with ``np.savez_compressed``. Versionable.
    """

    DEFAULT_SAVE_ARGS = {"compressed": False}

    def load(self) -> dict[str, np.ndarray]:
        """Read every array into memory, keyed as saved."""
        with self._open_load() as handle, np.load(handle, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}

    def save(self, data: dict[str, np.ndarray]) -> None:
        """Write the arrays; keys must be strings."""
        if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
            raise TypeError("NpzDataset saves a dict with string keys")
        writer = np.savez_compressed if self._save_args["compressed"] else np.savez
        arrays = {key: np.asarray(value) for key, value in data.items()}
        with self._open_save() as handle:
            writer(handle, allow_pickle=False, **arrays)
