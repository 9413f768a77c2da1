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


class NestedNpzDataset(NpzDataset):
    """``dict[str, dict[str, ndarray]]`` as one ``.npz`` whose keys are ``<outer>/<inner>``.

    E.g. the synthetic person's truth per scene: ``{"scene01": {"lip": ..., ...}, ...}``.
    """

    def load(self) -> dict[str, dict[str, np.ndarray]]:
        """Regroup the flat ``outer/inner`` keys."""
        nested: dict[str, dict[str, np.ndarray]] = {}
        for key, array in super().load().items():
            outer, _, inner = key.partition("/")
            nested.setdefault(outer, {})[inner] = array
        return nested

    def save(self, data: dict[str, dict[str, np.ndarray]]) -> None:
        """Flatten to ``outer/inner`` keys; outer keys must not contain ``/``."""
        if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
            raise TypeError("NestedNpzDataset saves a dict of dicts of arrays")
        bad = sorted(k for k in data if not isinstance(k, str) or "/" in k)
        if bad:
            raise ValueError(f"NestedNpzDataset: outer keys must be strings without '/': {bad}")
        super().save(
            {f"{outer}/{inner}": v for outer, group in data.items() for inner, v in group.items()}
        )
