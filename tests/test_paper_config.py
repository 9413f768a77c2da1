"""`conf/paper` (`kedro run --env paper`): upstream's sizes, schedules and sampling.

Values from docs/upstream.md §2.3-§5. The models are only built, never run: their parameter counts
come from their layer shapes.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from audio2photoreal_pipelines.models.builders import (
    build_face_denoiser,
    build_guide,
    build_pose_denoiser,
    build_vq,
)
from audio2photoreal_pipelines.serving import SampleParams
from audio2photoreal_pipelines.training.config import TrainConfig
from tests.conftest import project_parameters
from tests.models import upstream_counts as upstream
from tests.models.upstream_counts import trainable

CONF = Path(__file__).parents[1] / "conf"
PAPER_BLOCKS = ("vq", "guide", "face", "pose", "sample")

# docs/upstream.md §5.1 (README commands) and §5.2 (optimisation defaults); steps: §5.2's configured
# length, except the guide's, which counts epochs without end (its released checkpoint: 100k).
DIFFUSION_TRAIN = {
    "steps": 800_000,
    "batch_size": 4,
    "lr": 1e-4,
    "betas": (0.9, 0.999),
    "weight_decay": 0.0,
    "warmup_steps": 0,
    "lr_milestones": (),
    "grad_clip_norm": None,
    "ema_decay": None,
    "checkpoint_every": 5000,
    "seed": 10,
}
UPSTREAM_TRAIN = {
    "face": DIFFUSION_TRAIN,
    "pose": DIFFUSION_TRAIN,
    "vq": {
        "steps": 300_000,
        "batch_size": 4,
        "lr": 1e-3,
        "betas": (0.9, 0.99),
        "weight_decay": 0.0,
        "warmup_steps": 1000,
        "lr_milestones": (300_000,),
        "lr_gamma": 0.05,
        "grad_clip_norm": None,
        "seed": 123,
    },
    "guide": {
        "steps": 100_000,
        "batch_size": 4,
        "lr": 2e-4,
        "betas": (0.9, 0.99),
        "weight_decay": 0.1,
        "warmup_steps": 5000,
        "lr_milestones": (50_000, 400_000),
        "lr_gamma": 0.1,
        "grad_clip_norm": 1.0,
        "checkpoint_every": 5000,
        "seed": 10,
    },
}
# docs/upstream.md §2.3 windows, §3 objectives, §4 diffusion.
UPSTREAM_WINDOWS = {"vq": (600, 600), "guide": (600, 600), "face": (400, 600), "pose": (400, 600)}
UPSTREAM_OBJECTIVE = {
    "vq": {"commit_weight": 0.02},
    "guide": {"label_smoothing": 0.1, "cond_drop_prob": 0.2},
    "face": {"diffusion_steps": 1000, "lambda_vel": 0.0, "cond_drop_prob": 0.2},
    "pose": {
        "diffusion_steps": 1000,
        "lambda_vel": 2.0,
        "cond_drop_prob": 0.2,
        "guide_poses_vq_share": 0.0,
        "wiener_gain": None,  # upstream samples with the network's x0 alone
    },
}
# docs/upstream.md §4 and §5.3: README sampling with ddim500; §3(d): the guide's nucleus.
UPSTREAM_SAMPLING = {
    "num_repetitions": 5,
    "sampler": "ddim",
    "steps": 500,
    "eta": 0.0,
    "face_guidance": 10.0,
    "body_guidance": 2.0,
    "top_p": 0.94,
    "temperature": 1.0,
    "top_k": None,
    "window": 600,
}


def load_parameters(env: str) -> dict:
    """The parameters `kedro run --env <env>` sees."""
    return project_parameters(env)


@pytest.fixture(scope="module")
def paper() -> dict:
    return load_parameters("paper")


@pytest.fixture(scope="module")
def base() -> dict:
    return load_parameters("base")


def _leaves(tree: dict, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], object]:
    """{key path: value} of every non-dict value in a nested dict."""
    out: dict[tuple[str, ...], object] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_leaves(value, (*prefix, key)))
        else:
            out[(*prefix, key)] = value
    return out


def test_each_paper_value_differs_from_its_base_value(base):
    restated = []
    for path in sorted((CONF / "paper").glob("parameters*.yml")):
        for keys, value in _leaves(yaml.safe_load(path.read_text())).items():
            node = base
            for key in keys:
                node = node.get(key, {}) if isinstance(node, dict) else {}
            if node == value:
                restated.append(f"{path.name}: {'.'.join(keys)} = {value!r}")
    assert restated == []


def test_paper_merges_into_base_key_by_key(paper, base):
    # Keys paper does not state keep base's values, inside a block as well as outside.
    assert paper["vq"]["model"]["dilations"] == base["vq"]["model"]["dilations"]
    assert paper["pose"]["windows"]["kind"] == base["pose"]["windows"]["kind"] == "body"
    assert paper["sample"]["num_repetitions"] == base["sample"]["num_repetitions"]
    assert {k: v for k, v in paper.items() if k not in PAPER_BLOCKS} == {
        k: v for k, v in base.items() if k not in PAPER_BLOCKS
    }
    # A block paper switches off with null stays off.
    assert paper["pose"]["objective"]["wiener_gain"] is None


def test_paper_train_windows_and_objectives_are_upstreams(paper):
    for block, expected in UPSTREAM_TRAIN.items():
        config = TrainConfig.model_validate(paper[block]["train"])
        assert {key: getattr(config, key) for key in expected} == expected, block
        windows = paper[block]["windows"]
        assert (windows["min_frames"], windows["max_frames"]) == UPSTREAM_WINDOWS[block]
        assert paper[block]["objective"] == UPSTREAM_OBJECTIVE[block]


def test_paper_sampling_is_upstreams(paper):
    sample = paper["sample"]
    assert {key: sample[key] for key in UPSTREAM_SAMPLING} == UPSTREAM_SAMPLING
    assert sample["seed"] == 10
    SampleParams.model_validate(sample)


def test_paper_audio_widths_match_the_default_log_mel_features(paper):
    width = 2 * paper["audio_features"]["n_mels"]
    assert paper["audio_features"]["vq_wav2vec_checkpoint"] is None
    assert paper["guide"]["model"]["audio_dim"] == width
    assert paper["face"]["model"]["audio_feature_dim"] == width
    assert paper["pose"]["model"]["audio_feature_dim"] == width


def relative_gap(ours: int, theirs: int) -> float:
    return abs(ours - theirs) / theirs


def test_paper_vq_and_guide_have_upstreams_parameter_counts(paper):
    vq = build_vq(paper["vq"]["model"])
    vq_parts = upstream.vq()
    assert trainable(vq) == upstream.without(vq_parts, "project_mean_shape")

    guide = build_guide(paper["guide"]["model"], vq=vq)
    parts = upstream.guide()
    # Differences by design: the log-mel input projection and the (1, 1, 64) null embedding.
    shared = trainable(guide) - trainable(guide.audio_encoder.input_proj) - guide.null_audio.numel()
    assert relative_gap(shared, upstream.without(parts, "null_cond_embed")) < 0.02
    assert relative_gap(trainable(guide), sum(parts.values())) < 0.02


def test_paper_denoisers_have_upstreams_parameter_counts(paper):
    face = build_face_denoiser(paper["face"]["model"])
    parts = upstream.face()
    # No lip regressor here, so upstream's lip columns of the condition projection are not shared.
    shared = upstream.without(parts, *upstream.NULLS, "lip_proj")
    assert relative_gap(upstream.ours_denoiser_shared(face), shared) < 0.02
    assert relative_gap(trainable(face), sum(parts.values())) < 0.02

    pose = build_pose_denoiser(paper["pose"]["model"])
    parts = upstream.pose()
    assert (
        relative_gap(upstream.ours_denoiser_shared(pose), upstream.without(parts, *upstream.NULLS))
        < 0.02
    )
    assert relative_gap(trainable(pose), sum(parts.values())) < 0.02


def test_the_models_audio_widths_come_from_one_globals_entry(base, paper):
    width = yaml.safe_load((CONF / "base" / "globals.yml").read_text())["audio_feature_dim"]
    for params in (base, paper):
        assert params["face"]["model"]["audio_feature_dim"] == width
        assert params["pose"]["model"]["audio_feature_dim"] == width
        assert params["guide"]["model"]["audio_dim"] == width
    for path in (CONF / "base").glob("parameters_train_*.yml"):
        assert not re.search(rf":\s*{width}\b", path.read_text()), path.name  # never typed again
