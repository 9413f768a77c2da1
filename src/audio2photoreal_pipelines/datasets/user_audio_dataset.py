"""``UserAudioDataset``: a user's audio file to sample for, or None when none is given."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import soundfile as sf
from kedro.io import AbstractDataset, DatasetError

from audio2photoreal_pipelines.data.user_audio import UserAudio, UserAudioError
from audio2photoreal_pipelines.datasets.wav_dataset import WavDataset


class UserAudioDataset(AbstractDataset[None, "UserAudio | None"]):
    """Read-only: the audio file at ``filepath`` as a ``UserAudio``, or None for no file.

    The catalog fills ``filepath`` from ``--params sample.audio=<file>`` (``runtime_params``), so
    the ``sample`` pipeline samples the test chunks unless a file is given.
    """

    def __init__(self, *, filepath: str | None = None, metadata: dict[str, Any] | None = None):
        self._filepath = filepath or None
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath}

    def load(self) -> UserAudio | None:
        if self._filepath is None:
            return None
        path = Path(self._filepath)
        if not path.is_file():
            raise UserAudioError(f"{path}: no such file")
        try:
            samples, rate = WavDataset(filepath=str(path)).load()
        except DatasetError as err:
            reason = err.__cause__ if isinstance(err.__cause__, sf.LibsndfileError) else err
            raise UserAudioError(f"{path.name}: not a readable audio file ({reason})") from None
        return UserAudio(samples=samples, sample_rate=rate, name=path.name)

    def save(self, data: None) -> None:
        raise DatasetError("UserAudioDataset is read-only: it reads the file given as sample.audio")
