"""``DataStatsDataset``: normalisation stats in upstream's ``data_stats.pth`` format."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from audio2photoreal_pipelines.data.stats import (
    data_stats_from_bytes,
    data_stats_to_bytes,
    save_data_stats,
)
from audio2photoreal_pipelines.datasets._file_dataset import FileDataset


class DataStatsDataset(FileDataset):
    """``dict[str, ndarray]`` <-> torch archive of numpy arrays, read with a restricted unpickler.

    Loading an upstream ``dataset/<ID>/data_stats.pth`` works as is. Local saves are atomic.
    """

    def load(self) -> dict[str, np.ndarray]:
        """Read and check the 9 core keys (extra upstream keys are kept)."""
        path = self._load_path_str()
        with self._open_load() as handle:
            return data_stats_from_bytes(handle.read(), source=path)

    def save(self, data: dict[str, np.ndarray]) -> None:
        """Write in the upstream format."""
        if self._is_local:
            save_data_stats(data, Path(self._save_path_str()))
            self._invalidate_cache()
            return
        payload = data_stats_to_bytes(data)
        with self._open_save() as handle:
            handle.write(payload)
