"""``UserAudioDataset``: a user's audio file to sample for, or None when none is given."""

from __future__ import annotations

from pathlib import Path

import soundfile as sf
from kedro.io import DatasetError

from audio2photoreal_pipelines.data.user_audio import UserAudio, UserAudioError
from audio2photoreal_pipelines.datasets.optional_input import OptionalInputDataset
from audio2photoreal_pipelines.datasets.wav_dataset import WavDataset


class UserAudioDataset(OptionalInputDataset):
    """Read-only: the audio file at ``filepath`` as a ``UserAudio``, or None for no file.

    The catalog fills ``filepath`` from ``--params sample.audio=<file>`` (``runtime_params``), so
    the ``sample`` pipeline samples the test chunks unless a file is given.
    """

    def read(self, filepath: str) -> UserAudio:
        path = Path(filepath)
        if not path.is_file():
            raise UserAudioError(f"{path}: no such file")
        try:
            samples, rate = WavDataset(filepath=str(path)).load()
        except DatasetError as err:
            reason = err.__cause__ if isinstance(err.__cause__, sf.LibsndfileError) else err
            raise UserAudioError(f"{path.name}: not a readable audio file ({reason})") from None
        return UserAudio(samples=samples, sample_rate=rate, name=path.name)
