"""``NpyDataset``: one numpy array <-> a ``.npy`` file (never pickled)."""

from __future__ import annotations

import numpy as np

from audio2photoreal_pipelines.datasets._file_dataset import FileDataset


class NpyDataset(FileDataset):
    """A numpy array as ``.npy`` (``allow_pickle=False``); versionable, any fsspec filesystem.

    Catalog::

        body_pose:
          type: audio2photoreal_pipelines.datasets.NpyDataset
          filepath: data/02_intermediate/body_pose.npy
          versioned: true
    """

    def load(self) -> np.ndarray:
        """Read the array."""
        with self._open_load() as handle:
            return np.load(handle, allow_pickle=False, **self._load_args)

    def save(self, data: np.ndarray) -> None:
        """Write the array."""
        with self._open_save() as handle:
            np.save(handle, np.asarray(data), allow_pickle=False, **self._save_args)
