"""Nodes of ``ingest``: acquire, validate, mask, split, stats, test chunks, audio features."""

from __future__ import annotations

import logging

import numpy as np
import torch

from audio2photoreal_pipelines.data.acquire import (
    DatasetParams,
    acquire_person,
    read_synthetic_truth,
)
from audio2photoreal_pipelines.data.normalise import audio_mean_std, normalise
from audio2photoreal_pipelines.data.scenes import (
    Scene,
    SceneValidationError,
    discover_scenes,
    face_valid_mask,
    validate_scene,
)
from audio2photoreal_pipelines.data.splits import chunk_test_scenes, split_scenes
from audio2photoreal_pipelines.data.stats import compute_data_stats, summarise_stats
from audio2photoreal_pipelines.data.synthetic import SyntheticConfig
from audio2photoreal_pipelines.models.audio import VqWav2VecFeatures
from audio2photoreal_pipelines.parameters import AudioFeatureParams, SplitParams, TestChunkParams
from audio2photoreal_pipelines.units import FPS

logger = logging.getLogger(__name__)


def acquire_scenes(
    dataset: DatasetParams, synthetic: SyntheticConfig
) -> tuple[dict[str, Scene], dict[str, dict[str, np.ndarray]]]:
    """Generate, download or locate the person; return its scenes and any synthetic truth."""
    person_dir = acquire_person(dataset, synthetic.model_copy(update={"person": dataset.person}))
    scenes = discover_scenes(person_dir)
    return scenes, read_synthetic_truth(person_dir, list(scenes))


def validate_scenes(raw_scenes: dict[str, Scene]) -> tuple[dict[str, Scene], dict]:
    """Check every scene; fail with one error listing each bad file and its problem."""
    problems = []
    for scene in raw_scenes.values():
        try:
            validate_scene(scene)
        except SceneValidationError as err:
            problems.append(str(err))
    if problems:
        raise SceneValidationError(
            f"{len(problems)} invalid scene file(s):\n" + "\n".join(f"  {p}" for p in problems)
        )
    report = {
        name: {"frames": scene.num_frames, "seconds": scene.num_frames / FPS}
        for name, scene in raw_scenes.items()
    }
    return raw_scenes, report


def build_face_masks(scenes: dict[str, Scene]) -> dict[str, np.ndarray]:
    """Per-frame face-present mask for every scene, (T,) bool."""
    return {name: face_valid_mask(scene) for name, scene in scenes.items()}


def drop_faceless_scenes(
    scenes: dict[str, Scene], face_masks: dict[str, np.ndarray]
) -> dict[str, Scene]:
    """Drop scenes whose face is missing in every frame, as upstream does."""
    kept = {}
    for name, scene in scenes.items():
        if face_masks[name].any():
            kept[name] = scene
        else:
            logger.warning("Dropping %s: its face is missing in every frame (upstream rule)", name)
    if not kept:
        raise ValueError("Every scene has its face missing in every frame: nothing to train on")
    return kept


def split(scenes: dict[str, Scene], split_params: SplitParams) -> dict[str, list[str]]:
    """Train / val / test scene names by upstream's rule (the last scenes are held out)."""
    splits = split_scenes(list(scenes), **split_params.as_dict())
    logger.info("Split: %s", {k: len(v) for k, v in splits.items()})
    return splits


def compute_stats(
    scenes: dict[str, Scene], face_masks: dict[str, np.ndarray], splits: dict[str, list[str]]
) -> tuple[dict[str, np.ndarray], str]:
    """Normalisation stats on the train split, in upstream's format, and a readable summary."""
    stats = compute_data_stats(scenes, face_masks, splits["train"])
    return stats, summarise_stats(stats, splits=splits)


def make_test_chunks(
    scenes: dict[str, Scene], splits: dict[str, list[str]], chunk_params: TestChunkParams
) -> list[dict]:
    """Non-overlapping, seeded-shuffled chunks of the test scenes."""
    lengths = {name: scene.num_frames for name, scene in scenes.items()}
    chunks = chunk_test_scenes(lengths, splits["test"], **chunk_params.as_dict())
    if not chunks:
        raise ValueError(
            f"No test chunk of {chunk_params.chunk_frames} frames fits in the test scenes "
            f"{splits['test']}"
        )
    return chunks


def compute_audio_features(
    scenes: dict[str, Scene],
    data_stats: dict[str, np.ndarray],
    vq_wav2vec: VqWav2VecFeatures | None,
    feature_params: AudioFeatureParams,
) -> dict[str, np.ndarray]:
    """Features of each scene's normalised audio at 100 Hz, computed once: (Ta, C).

    Log-mel (C = 2 * n_mels), or upstream's frozen vq-wav2vec (C = 1024), the catalog's
    ``vq_wav2vec``, when globals' ``vq_wav2vec_checkpoint`` is set; Ta = N // 480 + 1 either way.
    """
    features = feature_params.extractor(vq_wav2vec)
    mean, std = audio_mean_std(data_stats)
    out = {}
    with torch.inference_mode():
        for name, scene in scenes.items():
            audio = normalise(scene.read_audio(0, scene.num_frames), mean, std)
            out[name] = features(torch.from_numpy(audio)[None]).squeeze(0).numpy()
    return out
