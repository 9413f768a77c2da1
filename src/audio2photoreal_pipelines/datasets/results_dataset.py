"""``UpstreamResultsDataset``: upstream's ``results.npy``, a dict saved with ``np.save``."""

from __future__ import annotations

import numpy as np

from audio2photoreal_pipelines.datasets._file_dataset import FileDataset

RESULT_KEYS = ("motions", "audio", "gt", "lengths", "keyframes")


class UpstreamResultsDataset(FileDataset):
    """Generated motion in the layout upstream's renderer reads (``np.load(...).item()``).

    Upstream pickles a dict into a 0-d object array, so loading needs ``allow_pickle``; this
    dataset only loads files whose dict holds exactly upstream's keys of plain numeric arrays.
    """

    def load(self) -> dict[str, np.ndarray]:
        """Read the dict back, refusing anything but upstream's keys of numeric arrays."""
        with self._open_load() as handle:
            data = np.load(handle, allow_pickle=True).item()
        if not isinstance(data, dict) or set(data) != set(RESULT_KEYS):
            raise ValueError(f"{self._load_path_str()}: not a results.npy with keys {RESULT_KEYS}")
        if not all(isinstance(v, np.ndarray) and v.dtype.kind in "fiu" for v in data.values()):
            raise ValueError(f"{self._load_path_str()}: results.npy values must be numeric arrays")
        return data

    def save(self, data: dict[str, np.ndarray]) -> None:
        """Write the dict as upstream's ``np.save`` does."""
        missing = set(RESULT_KEYS) - set(data)
        if missing:
            raise ValueError(f"results.npy needs keys {sorted(missing)}")
        with self._open_save() as handle:
            np.save(handle, {key: np.asarray(data[key]) for key in RESULT_KEYS}, allow_pickle=True)
