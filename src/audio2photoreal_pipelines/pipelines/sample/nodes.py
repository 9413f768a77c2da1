"""Nodes of the ``sample`` pipeline."""

from __future__ import annotations

import numpy as np
from einops import rearrange

from audio2photoreal_pipelines.data.normalise import audio_mean_std, denormalise, motion_mean_std
from audio2photoreal_pipelines.data.scenes import Scene
from audio2photoreal_pipelines.data.user_audio import UserAudio
from audio2photoreal_pipelines.data.windows import fixed_windows
from audio2photoreal_pipelines.datasets.registered_model import RegisteredModule
from audio2photoreal_pipelines.models.audio import VqWav2VecFeatures
from audio2photoreal_pipelines.parameters import AudioFeatureParams
from audio2photoreal_pipelines.serving import KINDS, SampleParams, sample_clips, user_audio_inputs


def prepare_inputs(
    scenes: dict[str, Scene],
    face_masks: dict[str, np.ndarray],
    data_stats: dict[str, np.ndarray],
    audio_features: dict[str, np.ndarray],
    test_chunks: list[dict],
    user_audio: UserAudio | None,
    vq_wav2vec: VqWav2VecFeatures | None,
    sample: SampleParams,
    feature_params: AudioFeatureParams,
) -> dict[str, np.ndarray]:
    """The clips to sample: the test chunks, or the user's audio (``--params sample.audio=<file>``,
    read by the catalog's ``user_audio``) when it is given.

    Returns normalised arrays: audio (S, N, 2), audio_features (S, La, C), length_mask (S, T),
    and for test chunks the ground truth body (S, T, 104), face (S, T, 256) and face_valid (S, T).
    """
    if user_audio is not None:
        audio = user_audio.prepared(sample.seed)
        return user_audio_inputs(audio, data_stats, feature_params, vq_wav2vec)
    if sample.audio:
        raise ValueError(
            f"sample.audio is {sample.audio!r} in a parameters file, where the catalog cannot see "
            "it: give it on the command line, --params sample.audio=<file>"
        )
    chunks = test_chunks[: sample.max_clips] if sample.max_clips else test_chunks
    body = fixed_windows(scenes, face_masks, data_stats, audio_features, chunks, kind="body")
    face = fixed_windows(
        scenes, face_masks, data_stats, audio_features, chunks, kind="face", include_audio=False
    )
    return {
        "audio": body["audio"].numpy(),
        "audio_features": body["audio_features"].numpy(),
        "length_mask": body["length_mask"].numpy(),
        "gt_body": body["motion"].numpy(),
        "gt_face": face["motion"].numpy(),
        "face_valid": (face["face_valid"] & face["length_mask"]).numpy(),
    }


def sample_motion(
    vq_model: RegisteredModule,
    guide_model: RegisteredModule,
    face_model: RegisteredModule,
    pose_model: RegisteredModule,
    inputs: dict[str, np.ndarray],
    data_stats: dict[str, np.ndarray],
    sample: SampleParams,
) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
    """Draw ``num_repetitions`` samples per clip; return raw (un-normalised) motion and versions.

    Motion arrays are repetition-major: body (R, S, T, 104), guide_poses (R, S, K, 104),
    face (R, S, T, 256).
    """
    loaded = dict(zip(KINDS, (vq_model, guide_model, face_model, pose_model), strict=True))
    modules = {kind: model.module for kind, model in loaded.items()}
    samples = sample_clips(modules, inputs, data_stats, sample)
    versions = {
        kind: {"name": model.name, "version": model.version} for kind, model in loaded.items()
    }
    return samples, versions


def to_upstream_results(
    samples: dict[str, np.ndarray], inputs: dict[str, np.ndarray], data_stats: dict[str, np.ndarray]
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Face and body ``results.npy`` dicts in upstream's layout, for its renderer.

    Keys motions (N, F, 1, T), audio (N, T·1600, 2), gt (N, F, 1, T), lengths (N,) and keyframes
    (body: the guide poses; face: the ground truth), N = R·S ordered repetition-major. A user's
    wav has no ground truth, so gt is zeros there.
    """
    reps = samples["body"].shape[0]
    mean, std = audio_mean_std(data_stats)
    # Cast before tiling and share one array between both dicts: the float64 tile cast twice
    # made this node peak at 2.9 GB in the default run.
    audio = np.tile(denormalise(inputs["audio"], mean, std).astype(np.float32), (reps, 1, 1))
    lengths = np.tile(samples["lengths"], reps)
    results = {}
    for kind in ("body", "face"):
        mean_k, std_k = motion_mean_std(data_stats, kind)
        motions = samples[kind]
        gt_key = f"gt_{kind}"
        gt = (
            denormalise(inputs[gt_key], mean_k, std_k)
            if gt_key in inputs
            else np.zeros(motions.shape[1:], dtype=np.float32)
        )
        gt_all = np.tile(gt, (reps, 1, 1))
        keyframes = (
            rearrange(samples["guide_poses"], "r s k f -> (r s) k f") if kind == "body" else gt_all
        )
        results[kind] = {
            "motions": rearrange(motions, "r s t f -> (r s) f 1 t").astype(np.float32),
            "audio": audio,
            "gt": rearrange(gt_all, "n t f -> n f 1 t").astype(np.float32),
            "lengths": lengths.astype(np.int64),
            "keyframes": keyframes.astype(np.float32),
        }
    return results["body"], results["face"]
