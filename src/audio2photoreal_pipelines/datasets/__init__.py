"""Custom Kedro datasets (catalog ``type: audio2photoreal_pipelines.datasets.<Name>``)."""

from audio2photoreal_pipelines.datasets.atomic_text import JSONDataset, TextDataset
from audio2photoreal_pipelines.datasets.data_stats_dataset import DataStatsDataset
from audio2photoreal_pipelines.datasets.fairseq_checkpoint import VqWav2VecDataset
from audio2photoreal_pipelines.datasets.npy_dataset import NpyDataset
from audio2photoreal_pipelines.datasets.npz_dataset import NestedNpzDataset, NpzDataset
from audio2photoreal_pipelines.datasets.results_dataset import UpstreamResultsDataset
from audio2photoreal_pipelines.datasets.scene_index_dataset import SceneIndexDataset
from audio2photoreal_pipelines.datasets.user_audio_dataset import UserAudioDataset
from audio2photoreal_pipelines.datasets.wav_dataset import WavDataset

__all__ = [
    "DataStatsDataset",
    "JSONDataset",
    "NestedNpzDataset",
    "NpyDataset",
    "NpzDataset",
    "SceneIndexDataset",
    "TextDataset",
    "UpstreamResultsDataset",
    "UserAudioDataset",
    "VqWav2VecDataset",
    "WavDataset",
]
