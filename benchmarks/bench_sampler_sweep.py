"""Quality against cost of the diffusion samplers, on the trained models of a finished run.

Run after ``make run``: python benchmarks/bench_sampler_sweep.py [--clips 4] [--reps 3]
[--reference-steps 500]

Every sampler draws the face and the body (guide → VQ → body diffusion) of the first ``clips``
held-out test clips, ``reps`` repetitions each, from the same seed, and is scored against their
ground truth as ``evaluate`` scores (FD_g, FD_k, face L2, lip correlation, stroke response).
``denoiser_evals`` counts denoiser calls per sample and model: one per step, each a
conditional + unconditional pair in one batch. The recommended sampler is the cheapest whose
every metric is within 10 % of the reference's (DDIM at ``reference_steps``); upstream's is
DDIM 500, which takes about 10 minutes of this sweep on 2 CPU cores, so the default reference is
DDIM 100. The candidates are DDIM 100/50/25/10 and DPM-Solver++ 20/10, less the reference.
Writes ``data/08_reporting/<person>/sampler_sweep.png`` and prints JSON.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from _project import load_run
from _timing import PROJECT_ROOT, print_json
from matplotlib.ticker import NullFormatter, ScalarFormatter

from audio2photoreal_pipelines.data.normalise import denormalise, motion_mean_std
from audio2photoreal_pipelines.evaluation import metrics
from audio2photoreal_pipelines.evaluation.table import evaluate_methods
from audio2photoreal_pipelines.models.generate import SamplingConfig, generate_body, generate_face

# Lower is better for the first three, higher for the last two.
LOWER_BETTER = ("FD_g", "FD_k", "face_L2")
HIGHER_BETTER = ("lip_corr", "stroke_resp")
TOLERANCE = 0.10
CANDIDATES = [
    ("ddim", 100),
    ("ddim", 50),
    ("ddim", 25),
    ("ddim", 10),
    ("dpmsolver", 20),
    ("dpmsolver", 10),
]


def within_tolerance(row: dict, reference: dict) -> bool:
    """Every metric of ``row`` within TOLERANCE of the reference's, in its worse direction."""
    lower = all(row[m] <= (1 + TOLERANCE) * reference[m] for m in LOWER_BETTER)
    higher = all(row[m] >= (1 - TOLERANCE) * reference[m] for m in HIGHER_BETTER)
    return lower and higher


def sweep_samplers(reference_steps: int) -> list[tuple[str, int]]:
    """The reference DDIM first, then every candidate that is not the reference."""
    reference = ("ddim", reference_steps)
    return [reference, *(candidate for candidate in CANDIDATES if candidate != reference)]


def recommend(reference: dict, candidates: list[dict]) -> dict:
    """The candidate with the fewest denoiser calls within tolerance, else the reference."""
    eligible = [row for row in candidates if within_tolerance(row, reference)]
    return min(eligible, key=lambda row: row["denoiser_evals"]) if eligible else reference


def sample_and_score(run: dict, config: SamplingConfig, clips: int) -> dict[str, Any]:
    """Draw face and body for the first ``clips`` test clips with ``config``; time and score."""
    inputs, stats = run["sample_inputs"], run["data_stats"]
    features = torch.from_numpy(inputs["audio_features"][:clips])
    length_mask = torch.from_numpy(inputs["length_mask"][:clips])
    generator = torch.Generator().manual_seed(run["params:sample"].seed)
    start = time.perf_counter()
    with torch.inference_mode():
        body, _ = generate_body(
            run["vq"], run["guide"], run["pose"], features, length_mask, config, generator
        )
        face = generate_face(run["face"], features, length_mask, config, generator)
    seconds = time.perf_counter() - start
    body_mean, body_std = motion_mean_std(stats, "body")
    face_mean, face_std = motion_mean_std(stats, "face")
    gt_body = denormalise(inputs["gt_body"][:clips], body_mean, body_std)
    truth, readout = run["evaluation_truth"], run["lip_readout"]
    (row,) = evaluate_methods(
        {
            "Ours": {
                "body": denormalise(body.numpy(), body_mean, body_std),
                "face": denormalise(face.numpy(), face_mean, face_std),
            }
        },
        gt_body,
        denormalise(inputs["gt_face"][:clips], face_mean, face_std),
        inputs["face_valid"][:clips],
        lip_truth=np.asarray(truth["lip"][:clips]),
        lip_readout=(np.asarray(readout["w"]), readout["b"]),
        stroke_frames=[np.asarray(f) for f in truth["strokes"][:clips]],
        mean_vel=metrics.mean_velocity(gt_body),
    )
    scored = {m: round(float(row[m]), 4) for m in (*LOWER_BETTER, *HIGHER_BETTER)}
    return {
        "sampler": config.sampler,
        "steps": config.steps,
        "denoiser_evals": config.steps,
        "seconds": round(seconds, 1),
        **scored,
    }


def plot(rows: list[dict], path: Path) -> None:
    """One panel per metric against seconds, one point per sampler."""
    names = [*LOWER_BETTER, *HIGHER_BETTER]
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.2))
    for ax, name in zip(axes, names, strict=True):
        for sampler, marker in (("ddim", "o"), ("dpmsolver", "s")):
            mine = [r for r in rows if r["sampler"] == sampler]
            ax.plot([r["seconds"] for r in mine], [r[name] for r in mine], marker, label=sampler)
            for r in mine:
                ax.annotate(str(r["steps"]), (r["seconds"], r[name]), fontsize=8)
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("seconds (face + body)")
        ax.set_title(name + (" (lower is better)" if name in LOWER_BETTER else ""))
    axes[0].legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(
    project: Path = PROJECT_ROOT, *, clips: int = 4, reps: int = 3, reference_steps: int = 100
) -> dict[str, Any]:
    run = load_run(
        project,
        [
            "sample_inputs",
            "data_stats",
            "evaluation_truth",
            "lip_readout",
            "params:sample",
            "params:dataset",
        ],
        ["vq", "guide", "face", "pose"],
    )
    params = run["params:sample"].as_dict()
    fields = SamplingConfig.model_fields
    base = {k: v for k, v in params.items() if k in fields} | {"num_repetitions": reps}
    rows = [
        sample_and_score(run, SamplingConfig(**base | {"sampler": s, "steps": n}), clips)
        for s, n in sweep_samplers(reference_steps)
    ]
    best = recommend(rows[0], rows[1:])
    figure = project / "data" / "08_reporting" / run["params:dataset"].person / "sampler_sweep.png"
    plot(rows, figure)
    return {
        "clips": clips,
        "repetitions": reps,
        "reference": f"ddim {reference_steps}",
        "rows": rows,
        "recommended": f"{best['sampler']} {best['steps']}",
        "configured": f"{params['sampler']} {params['steps']}",
        "figure": str(figure.relative_to(project)),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=4)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--reference-steps", type=int, default=100)
    args = parser.parse_args()
    print_json(main(clips=args.clips, reps=args.reps, reference_steps=args.reference_steps))
