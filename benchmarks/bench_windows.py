"""Training-window throughput: memory-mapped `WindowSampler.sample` vs whole-file loading.

A small synthetic person is generated into a temporary folder. The baseline draws the same
windows but `np.load`s every needed motion file whole for each batch (what a loader without
memory maps does), then builds the batch with the same code (`fixed_windows`). Windows have a
fixed length, so both paths must return identical batches. The gap grows with scene length:
real scenes are minutes long, these synthetic ones under two.
Run: python benchmarks/bench_windows.py
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _timing import interleaved_medians, machine_info, print_json, ratio

from audio2photoreal_pipelines.data.scenes import Scene, discover_scenes, face_valid_mask
from audio2photoreal_pipelines.data.stats import compute_data_stats
from audio2photoreal_pipelines.data.synthetic import SyntheticConfig, generate_person
from audio2photoreal_pipelines.data.windows import WindowSampler, feature_index, fixed_windows

FEATURE_DIM = 80  # 2 channels x 40 mel bins, as the cached log-mel features
# (kind, window frames): the face/body denoisers' longest window and the guide's window.
SETUPS = (("face", 150), ("body", 600))
SOURCE = {"face": "face_expression", "body": "body_pose"}


def load_whole(scenes: dict[str, Scene], names: set[str], kind: str) -> dict[str, Scene]:
    """Copies of `names` whose motion array for `kind` is read whole from disk (no memory map)."""
    field = SOURCE[kind]
    return {
        name: dataclasses.replace(
            scenes[name],
            **{field: np.load(getattr(scenes[name], f"{field}_path"), allow_pickle=False)},
        )
        for name in names
    }


def bench_setup(
    scenes: dict[str, Scene],
    masks: dict[str, np.ndarray],
    stats: dict[str, np.ndarray],
    features: dict[str, np.ndarray],
    *,
    kind: str,
    frames: int,
    batch_size: int,
    batches: int,
    repeats: int,
) -> dict[str, Any]:
    """Batches per second of both loaders over `batches` batches of `batch_size` windows."""
    sampler = WindowSampler(
        scenes,
        masks,
        stats,
        features,
        list(scenes),
        kind=kind,
        min_frames=frames,
        max_frames=frames,
    )
    last: dict[str, dict[str, torch.Tensor]] = {}

    def memory_mapped() -> None:
        generator = torch.Generator().manual_seed(0)
        for _ in range(batches):
            last["mmap"] = sampler.sample(batch_size, generator)

    def whole_files() -> None:
        generator = torch.Generator().manual_seed(0)
        for _ in range(batches):
            windows = sampler.draw(batch_size, generator)
            loaded = load_whole(scenes, {name for name, _, _ in windows}, kind)
            chunks = [{"scene": n, "start": s, "length": length} for n, s, length in windows]
            last["naive"] = fixed_windows(
                loaded, masks, stats, features, chunks, kind=kind, include_audio=False
            )

    seconds = interleaved_medians(
        {"mmap": memory_mapped, "naive": whole_files}, repeats=repeats, device=torch.device("cpu")
    )
    identical = last["mmap"].keys() == last["naive"].keys() and all(
        torch.equal(value, last["naive"][key]) for key, value in last["mmap"].items()
    )
    return {
        "frames": frames,
        "batch_size": batch_size,
        "batches_per_repeat": batches,
        "repeats": repeats,
        "mmap_batches_per_s": round(batches / seconds["mmap"], 1),
        "whole_file_batches_per_s": round(batches / seconds["naive"], 1),
        "mmap_speedup": ratio(seconds["naive"], seconds["mmap"]),
        "batches_identical": identical,
    }


def main(*, quick: bool = False) -> dict[str, Any]:
    """Results for a face and a body window setup on a freshly generated synthetic person."""
    config = SyntheticConfig(
        num_scenes=2 if quick else 4,
        min_seconds=21 if quick else 60,
        max_seconds=22 if quick else 90,
        faceless_scene=None,
    )
    results: dict[str, Any] = {"machine": machine_info(torch.device("cpu"))}
    with tempfile.TemporaryDirectory() as folder:
        generate_person(Path(folder), config)
        scenes = discover_scenes(folder)
        masks = {name: face_valid_mask(scene) for name, scene in scenes.items()}
        stats = compute_data_stats(scenes, masks, list(scenes))
        rng = np.random.default_rng(0)
        features = {
            name: rng.standard_normal((feature_index(s.num_frames) + 1, FEATURE_DIM), np.float32)
            for name, s in scenes.items()
        }
        results["person"] = {
            "scenes": len(scenes),
            "frames": sum(s.num_frames for s in scenes.values()),
        }
        for kind, frames in SETUPS:
            results[kind] = bench_setup(
                scenes,
                masks,
                stats,
                features,
                kind=kind,
                frames=frames,
                batch_size=16,
                batches=2 if quick else 20,
                repeats=1 if quick else 5,
            )
    return results


if __name__ == "__main__":
    print_json(main())
