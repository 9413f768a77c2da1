"""``WavDataset``: ``(float32 (N, channels), sample_rate)`` <-> an audio file via soundfile."""

from __future__ import annotations

import numpy as np
import soundfile as sf

from audio2photoreal_pipelines.datasets._file_dataset import FileDataset


class WavDataset(FileDataset):
    """Audio as ``(samples (N, channels) float32, sample_rate)``; versionable.

    ``save_args`` go to ``soundfile.write`` (``subtype``, ``format``). The default subtype
    ``FLOAT`` round-trips float32 exactly; set ``subtype: PCM_16`` for compact 16-bit files.
    """

    DEFAULT_SAVE_ARGS = {"format": "WAV", "subtype": "FLOAT"}

    def load(self) -> tuple[np.ndarray, int]:
        """Read all samples as float32, always 2-D."""
        with self._open_load() as handle:
            data, sample_rate = sf.read(handle, dtype="float32", always_2d=True, **self._load_args)
        return data, int(sample_rate)

    def save(self, data: tuple[np.ndarray, int]) -> None:
        """Write ``(samples (N,) or (N, channels), sample_rate)``."""
        if not isinstance(data, tuple) or len(data) != 2:
            raise TypeError("WavDataset saves a (samples, sample_rate) tuple")
        samples, sample_rate = np.asarray(data[0]), int(data[1])
        if samples.ndim not in (1, 2):
            raise ValueError(f"samples must be (N,) or (N, channels), got {samples.shape}")
        with self._open_save() as handle:
            sf.write(handle, samples, sample_rate, **self._save_args)
