"""Each ``sample`` node with tiny random models built by the project's own builders."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml

from audio2photoreal_pipelines.data.normalise import audio_mean_std, denormalise
from audio2photoreal_pipelines.data.scenes import discover_scenes, face_valid_mask
from audio2photoreal_pipelines.data.stats import compute_data_stats
from audio2photoreal_pipelines.datasets.registered_model import RegisteredModule
from audio2photoreal_pipelines.datasets.user_audio_dataset import UserAudioDataset
from audio2photoreal_pipelines.evaluation.metrics import div_sample
from audio2photoreal_pipelines.models.builders import (
    build_face_denoiser,
    build_guide,
    build_pose_denoiser,
    build_vq,
)
from audio2photoreal_pipelines.parameter_block import ParameterError
from audio2photoreal_pipelines.parameters import AudioFeatureParams
from audio2photoreal_pipelines.pipelines.ingest.nodes import compute_audio_features
from audio2photoreal_pipelines.pipelines.sample import nodes
from audio2photoreal_pipelines.serving import SampleParams
from tests.conftest import PROJECT_ROOT
from tests.data.conftest import write_scenes, write_speech_wav

N_MELS = 4
FEATURES = 2 * N_MELS
AUDIO_FEATURES = AudioFeatureParams(n_mels=N_MELS, feature_dim=FEATURES)
FRAME = 1600
REPS = 2
CHUNKS = [
    {"scene": "scene01", "start": 0, "length": 600},
    {"scene": "scene02", "start": 45, "length": 600},
]
UPSTREAM_KEYS = {"motions", "audio", "gt", "lengths", "keyframes"}


def _sample_params(**overrides) -> SampleParams:
    """The project's own sample parameters, made tiny."""
    params = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_sample.yml").read_text())
    tiny = {"num_repetitions": REPS, "steps": 2, "device": "cpu"}
    return SampleParams.model_validate({**params["sample"], **tiny, **overrides})


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """One torch thread, also for the module fixtures: the suite shares two cores."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def person(tmp_path_factory):
    """(scenes, face_masks, data_stats, audio_features) of two scenes just over 600 frames."""
    scenes = discover_scenes(write_scenes(tmp_path_factory.mktemp("person") / "P1", [620, 650]))
    masks = {name: face_valid_mask(scene) for name, scene in scenes.items()}
    stats = compute_data_stats(scenes, masks, list(scenes))
    features = compute_audio_features(scenes, stats, None, AUDIO_FEATURES)
    return scenes, masks, stats, features


@pytest.fixture(scope="module")
def models():
    """Randomly initialised vq, guide, face and pose models of tiny width, as the registry
    datasets load them (a2p-P1-<kind> versions 1 to 4)."""
    torch.manual_seed(0)
    # No k-means init: the codebook must be random before any training batch.
    vq = build_vq({"width": 8, "num_quantizers": 2, "codebook_size": 16, "kmeans_init": False})
    guide = build_guide(
        {"audio_dim": FEATURES, "dim": 16, "depth": 1, "heads": 2, "ff_dim": 32}, vq=vq
    )
    tiny = {"dim": 16, "depth": 1, "heads": 2, "ff_dim": 32, "audio_feature_dim": FEATURES}
    face = build_face_denoiser({**tiny, "cond_encoder_layers": 1})
    pose = build_pose_denoiser({**tiny, "conv_hidden": 8})
    modules = zip(("vq", "guide", "face", "pose"), (vq, guide, face, pose), strict=True)
    return tuple(
        RegisteredModule(module, f"a2p-P1-{kind}", str(number))
        for number, (kind, module) in enumerate(modules, start=1)
    )


def _prepare(person, sample: SampleParams) -> dict[str, np.ndarray]:
    """The node as a run with ``--params sample.audio=...`` feeds it: the catalog's user_audio
    reads the same file."""
    scenes, masks, stats, features = person
    user_audio = UserAudioDataset(filepath=sample.audio).load()
    return nodes.prepare_inputs(
        scenes, masks, stats, features, CHUNKS, user_audio, None, sample, AUDIO_FEATURES
    )


def _user_audio(path, seed: int) -> np.ndarray:
    return UserAudioDataset(filepath=str(path)).load().prepared(seed)


@pytest.fixture(scope="module")
def chunk_run(person, models):
    """(inputs, samples, versions, results_body, results_face) for the two test chunks."""
    inputs = _prepare(person, _sample_params())
    samples, versions = nodes.sample_motion(*models, inputs, person[2], _sample_params())
    return inputs, samples, versions, *nodes.to_upstream_results(samples, inputs, person[2])


def test_test_chunks_give_inputs_with_ground_truth(person):
    scenes, masks, stats, _ = person
    inputs = _prepare(person, _sample_params())

    assert inputs["audio"].shape == (2, 600 * FRAME, 2)
    assert inputs["audio_features"].shape == (2, 2000, FEATURES)
    assert inputs["length_mask"].shape == (2, 600) and inputs["length_mask"].all()
    assert inputs["gt_body"].shape == (2, 600, 104)
    assert inputs["gt_face"].shape == (2, 600, 256)
    missing = ~masks["scene02"][45:645]
    np.testing.assert_array_equal(inputs["face_valid"][1], ~missing)
    raw = denormalise(inputs["audio"][1], *audio_mean_std(stats))
    np.testing.assert_allclose(raw, scenes["scene02"].read_audio(45, 600), atol=1e-6)


def test_max_clips_keeps_the_first_chunks(person):
    inputs = _prepare(person, _sample_params(max_clips=1))

    assert inputs["gt_body"].shape == (1, 600, 104)


def test_a_user_wav_gives_inputs_without_ground_truth(person, tmp_path):
    stats = person[2]
    path = write_speech_wav(tmp_path / "me.wav", 2.0)

    inputs = _prepare(person, _sample_params(audio=str(path)))

    assert set(inputs) == {"audio", "audio_features", "length_mask"}
    assert inputs["audio"].shape == (1, 60 * FRAME, 2)
    assert inputs["audio_features"].shape == (1, 60 * FRAME // 480 + 1, FEATURES)
    assert inputs["length_mask"].shape == (1, 60) and inputs["length_mask"].all()
    raw = denormalise(inputs["audio"][0], *audio_mean_std(stats))
    np.testing.assert_allclose(raw, _user_audio(path, seed=10), atol=1e-6)


def test_sampling_test_chunks_gives_repetition_major_finite_diverse_motion(chunk_run):
    _, samples, versions, _, _ = chunk_run

    assert samples["body"].shape == (REPS, 2, 600, 104)
    assert samples["guide_poses"].shape == (REPS, 2, 20, 104)
    assert samples["face"].shape == (REPS, 2, 600, 256)
    np.testing.assert_array_equal(samples["lengths"], [600, 600])
    for key in ("body", "guide_poses", "face"):
        assert np.isfinite(samples[key]).all()
    assert div_sample(samples["body"]) > 0 and div_sample(samples["face"]) > 0
    assert versions["vq"] == {"name": "a2p-P1-vq", "version": "1"}
    assert versions["pose"] == {"name": "a2p-P1-pose", "version": "4"}


def test_upstream_results_have_upstream_keys_and_shapes(chunk_run):
    _, _, _, body, face = chunk_run

    for results, dim in ((body, 104), (face, 256)):
        assert set(results) == UPSTREAM_KEYS
        assert results["motions"].shape == (4, dim, 1, 600)
        assert results["gt"].shape == (4, dim, 1, 600)
        assert results["audio"].shape == (4, 600 * FRAME, 2)
        np.testing.assert_array_equal(results["lengths"], [600] * 4)
    assert body["keyframes"].shape == (4, 20, 104)
    assert face["keyframes"].shape == (4, 600, 256)


def test_upstream_results_are_repetition_major(chunk_run, person):
    inputs, samples, _, body, face = chunk_run
    scenes, _, stats, _ = person
    clips = len(CHUNKS)

    for rep in range(REPS):
        for s, chunk in enumerate(CHUNKS):
            n = rep * clips + s
            np.testing.assert_array_equal(body["motions"][n, :, 0], samples["body"][rep, s].T)
            np.testing.assert_array_equal(face["motions"][n, :, 0], samples["face"][rep, s].T)
            np.testing.assert_array_equal(body["keyframes"][n], samples["guide_poses"][rep, s])
            true_body = scenes[chunk["scene"]].body_pose[chunk["start"] : chunk["start"] + 600]
            np.testing.assert_allclose(body["gt"][n, :, 0], true_body.T, rtol=1e-5, atol=1e-4)
    raw_audio = denormalise(inputs["audio"], *audio_mean_std(stats))
    np.testing.assert_allclose(body["audio"][clips : 2 * clips], raw_audio, atol=1e-6)


def _sample_user_clip(person, models, path):
    sample = _sample_params(audio=str(path))
    inputs = _prepare(person, sample)
    samples, _ = nodes.sample_motion(*models, inputs, person[2], sample)
    return inputs, samples


@pytest.mark.parametrize(("seconds", "frames"), [(2.0, 60), (180.0, 5400)])
def test_user_clips_of_any_length_are_sampled(person, models, tmp_path, seconds, frames):
    # 5400 frames are sampled as overlapping 600-frame windows.
    _, samples = _sample_user_clip(person, models, write_speech_wav(tmp_path / "me.wav", seconds))

    assert samples["body"].shape == (REPS, 1, frames, 104)
    assert samples["face"].shape == (REPS, 1, frames, 256)
    assert samples["guide_poses"].shape == (REPS, 1, -(-frames // 30), 104)
    np.testing.assert_array_equal(samples["lengths"], [frames])
    for key in ("body", "face"):
        assert np.isfinite(samples[key]).all()
        assert div_sample(samples[key]) > 0


def test_upstream_results_of_a_user_clip_have_zero_ground_truth(person, models, tmp_path):
    path = write_speech_wav(tmp_path / "me.wav", 2.0)
    inputs, samples = _sample_user_clip(person, models, path)

    body, face = nodes.to_upstream_results(samples, inputs, person[2])

    assert set(body) == set(face) == UPSTREAM_KEYS
    assert body["motions"].shape == (REPS, 104, 1, 60) and face["gt"].shape == (REPS, 256, 1, 60)
    assert not body["gt"].any() and not face["gt"].any()
    np.testing.assert_allclose(body["audio"][1], _user_audio(path, seed=10), atol=1e-6)
    np.testing.assert_array_equal(body["lengths"], [60] * REPS)


def test_an_audio_file_set_where_the_catalog_cannot_see_it_is_refused(person, tmp_path):
    path = write_speech_wav(tmp_path / "me.wav", 2.0)
    scenes, masks, stats, features = person
    with pytest.raises(ValueError, match=r"--params sample.audio=<file>"):
        nodes.prepare_inputs(
            scenes,
            masks,
            stats,
            features,
            CHUNKS,
            None,
            None,
            _sample_params(audio=str(path)),
            AUDIO_FEATURES,
        )


def test_an_unknown_sample_parameter_is_refused_by_its_block():
    # Kedro validates the block before the first node (tests/test_cli.py runs that path).
    with pytest.raises(ParameterError, match="colour: unknown key"):
        _sample_params(audio="no_such_take.wav", colour="red")


def test_the_model_alias_runtime_parameter_is_not_a_sampling_setting(person):
    # `--params sample.model_alias=<alias>` (read by the catalog) also lands in params:sample.
    inputs = _prepare(person, _sample_params(model_alias="candidate", max_clips=1))

    assert inputs["gt_body"].shape[0] == 1
