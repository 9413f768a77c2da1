"""The four models learn the synthetic person: each trained model clearly beats its untrained self.

Every model keeps its base ``model`` and ``objective`` blocks (conf/base/parameters_train_*.yml)
and is trained through its pipeline node. Only the schedule is shortened so that the whole file
fits in a few minutes on 2 CPU cores: fewer steps, a higher learning rate and, for the two
denoisers, smaller batches of shorter windows. The untrained baseline is the same architecture
built from the same seed, i.e. the trained model's own starting point. Scores are taken on the
held-out (val + test) scenes, except the guide's token accuracy (see its test).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml

from audio2photoreal_pipelines.data.acquire import DatasetParams, read_synthetic_truth
from audio2photoreal_pipelines.data.scenes import Scene, discover_scenes
from audio2photoreal_pipelines.data.synthetic import SyntheticConfig, generate_person
from audio2photoreal_pipelines.data.windows import WindowSampler, fixed_windows
from audio2photoreal_pipelines.datasets.registered_model import RegisteredModule
from audio2photoreal_pipelines.evaluation.metrics import fit_lip_readout, lip_sync, read_lip
from audio2photoreal_pipelines.models.builders import (
    build_face_denoiser,
    build_pose_denoiser,
    build_vq,
)
from audio2photoreal_pipelines.models.diffusion.sampling import sample
from audio2photoreal_pipelines.models.diffusion.schedules import (
    make_sampler,
    make_training_scheduler,
    q_sample,
)
from audio2photoreal_pipelines.models.vqvae import VQVAE
from audio2photoreal_pipelines.parameters import AudioFeatureParams, SplitParams, WindowParams
from audio2photoreal_pipelines.pipelines.ingest import nodes as ingest
from audio2photoreal_pipelines.pipelines.train_face.nodes import FACE_SPEC
from audio2photoreal_pipelines.pipelines.train_guide.nodes import GUIDE_SPEC
from audio2photoreal_pipelines.pipelines.train_pose.nodes import POSE_SPEC
from audio2photoreal_pipelines.pipelines.train_vq.nodes import VQ_SPEC
from audio2photoreal_pipelines.pipelines.training_template import make_windows
from audio2photoreal_pipelines.training.rng import seed_everything
from tests.conftest import PROJECT_ROOT, project_parameters
from tests.pipelines.training.conftest import run_train_node

pytestmark = pytest.mark.slow

CLIP_FRAMES = 150  # held-out clips scored by the denoisers
NUM_CLIPS = 8


@dataclass
class Person:
    """An ingested synthetic person, as the ingest pipeline leaves it."""

    scenes: dict[str, Scene]
    face_masks: dict[str, np.ndarray]
    splits: dict[str, list[str]]
    data_stats: dict[str, np.ndarray]
    audio_features: dict[str, np.ndarray]
    truth: dict[str, dict[str, np.ndarray]]
    root: Path

    @property
    def held_out(self) -> list[str]:
        return self.splits["val"] + self.splits["test"]


def base_params(name: str) -> dict:
    """The base configuration block of one training pipeline."""
    return project_parameters()[name]


def shortened(name: str, *, windows: dict | None = None, **train: float) -> dict:
    """Base parameters of ``name`` with a shorter schedule; model and objective stay as they are."""
    params = base_params(name)
    params["windows"].update(windows or {})
    # The learning-rate decay keeps its place in the shorter schedule.
    base_steps = params["train"]["steps"]
    milestones = params["train"].get("lr_milestones") or []
    params["train"]["lr_milestones"] = [round(m * train["steps"] / base_steps) for m in milestones]
    # One checkpoint at the end: the tests need the model, not the resumability.
    params["train"].update(train, checkpoint_every=train["steps"], log_every=50)
    return params


def training_windows(person: Person, params: dict):
    """The model's training windows, as its make_windows node gives them."""
    return make_windows(
        person.scenes,
        person.face_masks,
        person.data_stats,
        person.audio_features,
        person.splits,
        WindowParams.model_validate(params["windows"]),
        DatasetParams(person="SYNLEARN"),
    )


def run_node(spec, person: Person, params: dict, **extra):
    """Make the model's windows and train it as the pipeline would; return the trained module."""
    trained, history = run_train_node(
        spec,
        training_windows(person, params),
        person.data_stats,
        params,
        person="SYNLEARN",
        checkpoint_root=person.root / "checkpoints",
        **extra,
    )
    assert history, "training logged nothing"
    return trained.module.eval()


def registered(vq: VQVAE) -> RegisteredModule:
    """The VQ as the later training nodes receive it from the registry."""
    return RegisteredModule(vq, "a2p-SYNLEARN-vq", "1")


def untrained(build, params: dict) -> torch.nn.Module:
    """The architecture of ``params`` at the weights its training starts from."""
    seed_everything(params["train"]["seed"])
    return build(params["model"]).eval()


def held_out_clips(person: Person, kind: str) -> tuple[list[dict], dict[str, torch.Tensor]]:
    """NUM_CLIPS non-overlapping CLIP_FRAMES-frame clips of the held-out scenes and their batch."""
    chunks = [
        {"scene": name, "start": start, "length": CLIP_FRAMES}
        for name in person.held_out
        for start in range(0, person.scenes[name].num_frames - CLIP_FRAMES + 1, CLIP_FRAMES)
    ][:NUM_CLIPS]
    assert len(chunks) == NUM_CLIPS
    batch = fixed_windows(
        person.scenes,
        person.face_masks,
        person.data_stats,
        person.audio_features,
        chunks,
        kind=kind,
        include_audio=False,
    )
    return chunks, batch


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One thread: with other processes on the 2 cores, a 2-thread face step ran ~15x slower."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def person(tmp_path_factory) -> Person:
    """8 scenes of 21-30 s through the ingest nodes: 6 train, 1 val and 1 test scene."""
    root = tmp_path_factory.mktemp("learning")
    raw_dir = root / "SYNLEARN"
    config = SyntheticConfig(
        person="SYNLEARN", num_scenes=8, min_seconds=21, max_seconds=30, faceless_scene=None
    )
    generate_person(raw_dir, config)
    scenes, _ = ingest.validate_scenes(discover_scenes(raw_dir))
    face_masks = ingest.build_face_masks(scenes)
    scenes = ingest.drop_faceless_scenes(scenes, face_masks)
    splits = ingest.split(scenes, SplitParams(num_val=1, num_test=1))
    data_stats, _ = ingest.compute_stats(scenes, face_masks, splits)
    audio_features = ingest.compute_audio_features(
        scenes, data_stats, None, AudioFeatureParams(n_mels=40, feature_dim=80)
    )
    return Person(
        scenes=scenes,
        face_masks=face_masks,
        splits=splits,
        data_stats=data_stats,
        audio_features=audio_features,
        truth=read_synthetic_truth(raw_dir, list(scenes)),
        root=root,
    )


VQ_PARAMS = shortened("vq", steps=600, lr=3.0e-3)


@pytest.fixture(scope="module")
def trained_vq(person) -> VQVAE:
    """The base VQ-VAE trained for 600 steps (lr 3e-3; the base 1e-3 needs ~2x the steps)."""
    return run_node(VQ_SPEC, person, VQ_PARAMS)


def test_vq_reconstructs_held_out_keyframes_far_better_than_untrained(person, trained_vq):
    sampler = WindowSampler(
        person.scenes,
        person.face_masks,
        person.data_stats,
        person.audio_features,
        person.held_out,
        kind="body",
        min_frames=600,
        max_frames=600,
    )
    batch = sampler.sample(32, torch.Generator().manual_seed(0))
    keyframes, mask = batch["keyframes"], batch["keyframe_mask"]

    def error(vq: VQVAE) -> float:
        with torch.no_grad():
            return F.smooth_l1_loss(vq(keyframes, mask).recon, keyframes).item()

    # The untrained VQ's first forward still k-means-initialises its codebooks on these keyframes.
    before = error(untrained(build_vq, VQ_PARAMS))
    after = error(trained_vq)
    mean_pose = F.smooth_l1_loss(torch.zeros_like(keyframes), keyframes).item()
    print(
        f"VQ held-out SmoothL1: trained {after:.4f}, untrained {before:.4f}, zero {mean_pose:.4f}"
    )
    assert after < 0.5 * before
    assert after < 0.5 * mean_pose


def test_guide_token_accuracy_far_above_chance_and_the_most_frequent_token(person, trained_vq):
    """Teacher-forced accuracy on training windows: 6 scenes are too few to generalise from.

    (On held-out scenes the accuracy stays near the most-frequent-token baseline.)
    """
    params = shortened("guide", steps=150, batch_size=8, lr=3.0e-3)
    guide = run_node(GUIDE_SPEC, person, params, vq_model=registered(trained_vq))
    windows = training_windows(person, params)
    batch = windows.sample(16, torch.Generator().manual_seed(0))
    with torch.no_grad():
        tokens = trained_vq.encode(batch["keyframes"], batch["keyframe_mask"])
        logits = guide(tokens, batch["audio_features"], frame_mask=batch["length_mask"])
    predicted = logits.argmax(dim=-1).reshape(tokens.shape)
    accuracy = (predicted == tokens).float().mean(dim=(0, 1))  # (Q,)
    # The best constant guess per level, chosen with hindsight on these very tokens.
    per_level = tokens.reshape(-1, tokens.shape[-1])
    most_frequent = torch.stack(
        [torch.bincount(level).max() / level.numel() for level in per_level.unbind(dim=1)]
    )
    chance = 1.0 / trained_vq.codebook_size
    print(
        f"guide token accuracy per level {accuracy.tolist()}, most frequent token "
        f"{most_frequent.tolist()}, chance {chance:.4f}"
    )
    assert accuracy.mean() > 5 * chance
    assert torch.all(accuracy > 2 * most_frequent)


def test_face_follows_the_lip_driver_far_better_than_untrained(person):
    params = shortened(
        "face",
        windows={"min_frames": 60, "max_frames": 90},
        steps=600,
        batch_size=4,
    )
    face = run_node(FACE_SPEC, person, params)

    mean, std = person.data_stats["code_mean"], person.data_stats["code_std"]
    train_faces, train_lips = [], []
    for name in person.splits["train"]:
        valid = person.face_masks[name]
        train_faces.append(((person.scenes[name].face_expression[:] - mean) / std)[valid])
        train_lips.append(person.truth[name]["lip"][valid])
    w, b = fit_lip_readout(np.concatenate(train_faces), np.concatenate(train_lips))

    chunks, batch = held_out_clips(person, "face")
    true_lip = np.stack(
        [person.truth[c["scene"]]["lip"][c["start"] : c["start"] + c["length"]] for c in chunks]
    )
    readout_ceiling = lip_sync(read_lip(batch["motion"].double().numpy(), w, b), true_lip)
    assert readout_ceiling["lip_corr"] > 0.9, "the lip readout cannot read the true faces"

    sample_params = yaml.safe_load(
        (PROJECT_ROOT / "conf" / "base" / "parameters_sample.yml").read_text()
    )["sample"]
    cond = {"audio_features": batch["audio_features"], "length_mask": batch["length_mask"]}

    def lip_corr(model) -> float:
        codes = sample(
            model,
            make_sampler("ddim", num_inference_steps=25),
            cond,
            shape=(NUM_CLIPS, CLIP_FRAMES, 256),
            guidance_scale=sample_params["face_guidance"],
            generator=torch.Generator().manual_seed(0),
        )
        return lip_sync(read_lip(codes.double().numpy(), w, b), true_lip)["lip_corr"]

    before = lip_corr(untrained(build_face_denoiser, params))
    after = lip_corr(face)
    print(f"face held-out lip correlation: trained {after:.3f}, untrained {before:.3f}")
    assert after > 0.75  # 0.86 measured with 1 thread
    assert after > before + 0.5


def test_pose_denoises_held_out_motion_far_better_than_untrained(person, trained_vq):
    params = shortened(
        "pose",
        windows={"min_frames": 60, "max_frames": 90},
        steps=400,
        batch_size=8,
        lr=2.0e-3,
    )
    pose = run_node(POSE_SPEC, person, params, vq_model=registered(trained_vq))
    _, batch = held_out_clips(person, "body")
    cond = {k: batch[k] for k in ("audio_features", "length_mask", "keyframes", "keyframe_mask")}
    scheduler = make_training_scheduler(params["objective"]["diffusion_steps"])
    x0 = batch["motion"]

    def x0_error(model) -> float:
        """Mean x0-prediction MSE at a few fixed noise levels, the same noise for every model."""
        generator = torch.Generator().manual_seed(0)
        errors = []
        with torch.no_grad():
            for step in (100, 300, 500, 700):
                t = torch.full((x0.shape[0],), step)
                noise = torch.randn(x0.shape, generator=generator)
                x_t = q_sample(scheduler, x0, noise, t)
                errors.append(F.mse_loss(model(x_t, t, cond), x0).item())
        return float(np.mean(errors))

    before = x0_error(untrained(build_pose_denoiser, params))
    after = x0_error(pose)
    print(f"pose held-out x0 MSE: trained {after:.4f}, untrained {before:.4f}")
    assert after < 0.4 * before

    # Sampled from noise with the true 1 fps poses as its guide, the body passes through them:
    # its error at the keyframes is far below the mean pose's (0 in normalised units). Measured
    # here: 0.37; 0.98 with keyframe_track and audio_to_tokens off (guide poses only attended
    # to, as upstream), although that model's x0 error was lower. The base configuration's
    # 800 steps (no dropout, lr decay): 0.19.
    body_guidance = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_sample.yml").read_text())[
        "sample"
    ]["body_guidance"]
    sampled = sample(
        pose,
        make_sampler("ddim", num_inference_steps=25),
        cond,
        shape=tuple(x0.shape),
        guidance_scale=body_guidance,
        generator=torch.Generator().manual_seed(0),
    )
    valid = batch["keyframe_mask"][..., None].float()
    keyframe_error = ((sampled[:, ::30] - batch["keyframes"]) ** 2 * valid).sum() / valid.sum()
    mean_pose_error = (batch["keyframes"] ** 2 * valid).sum() / valid.sum()
    ratio = float(keyframe_error / mean_pose_error)
    print(f"pose sampled with true guide poses: keyframe error {ratio:.3f} x the mean pose's")
    assert ratio <= 0.5
