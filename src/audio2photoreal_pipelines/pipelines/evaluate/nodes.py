"""Nodes of the ``evaluate`` pipeline. Motion is compared raw (un-normalised), as upstream does."""

from __future__ import annotations

import logging

import numpy as np
from matplotlib.figure import Figure

from audio2photoreal_pipelines.data.normalise import audio_mean_std, denormalise, motion_mean_std
from audio2photoreal_pipelines.data.scenes import Scene
from audio2photoreal_pipelines.data.windows import fixed_windows
from audio2photoreal_pipelines.evaluation import baselines, metrics, plots
from audio2photoreal_pipelines.evaluation.promotion import should_promote
from audio2photoreal_pipelines.evaluation.report import render_html_report
from audio2photoreal_pipelines.evaluation.table import evaluate_methods, to_markdown
from audio2photoreal_pipelines.parameters import AudioFeatureParams, EvaluateParams, PromotionParams
from audio2photoreal_pipelines.serving import SampleParams
from audio2photoreal_pipelines.units import FPS, SAMPLES_PER_FRAME

logger = logging.getLogger(__name__)

OURS = "Ours"


def _raw(inputs: dict[str, np.ndarray], key: str, kind: str, stats: dict) -> np.ndarray:
    return denormalise(inputs[key], *motion_mean_std(stats, kind))


def build_baseline_pool(
    scenes: dict[str, Scene],
    face_masks: dict[str, np.ndarray],
    data_stats: dict[str, np.ndarray],
    audio_features: dict[str, np.ndarray],
    splits: dict[str, list[str]],
    sample_inputs: dict[str, np.ndarray],
    evaluate: EvaluateParams,
) -> dict[str, np.ndarray]:
    """Train-split chunks as long as the test clips: raw body, face and audio features."""
    length = sample_inputs["length_mask"].shape[1]
    lengths = {name: scenes[name].num_frames for name in splits["train"]}
    starts = [
        {"scene": name, "start": start, "length": length}
        for name, frames in lengths.items()
        for start in range(0, frames - length + 1, evaluate.baseline_stride)
    ]
    if not starts:
        raise ValueError(f"No train scene is {length} frames long: no chunks for the baselines")
    body = fixed_windows(
        scenes, face_masks, data_stats, audio_features, starts, kind="body", include_audio=False
    )
    face = fixed_windows(
        scenes, face_masks, data_stats, audio_features, starts, kind="face", include_audio=False
    )
    return {
        "body": denormalise(body["motion"].numpy(), *motion_mean_std(data_stats, "body")),
        "face": denormalise(face["motion"].numpy(), *motion_mean_std(data_stats, "face")),
        "audio_features": body["audio_features"].numpy(),
    }


def make_baselines(
    baseline_pool: dict[str, np.ndarray],
    sample_inputs: dict[str, np.ndarray],
    samples: dict[str, np.ndarray],
    data_stats: dict[str, np.ndarray],
    evaluate: EvaluateParams,
) -> dict[str, np.ndarray]:
    """GT, Random, KNN and Mean predictions, (R, S, T, F) each, as ``<method>_<body|face>``."""
    if "gt_body" not in sample_inputs:
        raise ValueError("evaluate needs the test chunks; sample.audio (a user's wav) has no GT")
    reps, clips = samples["body"].shape[:2]
    gt = {kind: _raw(sample_inputs, f"gt_{kind}", kind, data_stats) for kind in ("body", "face")}
    out = {}
    for kind in ("body", "face"):
        pool = baseline_pool[kind]
        mean = motion_mean_std(data_stats, kind)[0]
        out[f"GT_{kind}"] = baselines.gt_baseline(gt[kind], reps)
        out[f"Random_{kind}"] = baselines.random_baseline(pool, clips, reps, evaluate.seed)
        out[f"KNN_{kind}"] = baselines.knn_baseline(
            baseline_pool["audio_features"], pool, sample_inputs["audio_features"], reps
        )
        out[f"Mean_{kind}"] = baselines.mean_baseline(mean, (reps, *gt[kind].shape))
    return out


def fit_lip_readout(
    scenes: dict[str, Scene],
    face_masks: dict[str, np.ndarray],
    synthetic_truth: dict[str, dict[str, np.ndarray]],
    splits: dict[str, list[str]],
) -> dict:
    """Least-squares map from raw face codes to the true lip driver, on train frames only.

    Empty for a real person, whose true lip driver is unknown.
    """
    names = [n for n in splits["train"] if n in synthetic_truth]
    if not names:
        return {}
    face = np.concatenate([np.asarray(scenes[n].face_expression)[face_masks[n]] for n in names])
    lip = np.concatenate([synthetic_truth[n]["lip"][face_masks[n]] for n in names])
    w, b = metrics.fit_lip_readout(face.astype(np.float64), lip.astype(np.float64))
    return {"w": w.tolist(), "b": float(b)}


def clip_truth(
    test_chunks: list[dict],
    synthetic_truth: dict[str, dict[str, np.ndarray]],
    sample_inputs: dict[str, np.ndarray],
    data_stats: dict[str, np.ndarray],
) -> dict:
    """Per test clip: the true lip driver and gesture-stroke starts (frames of the clip; both
    synthetic only) and the speech onsets in seconds.

    Onsets are the generator's true syllable onsets for the synthetic person, else detected in
    channel 0 with librosa.
    """
    num_clips = sample_inputs["length_mask"].shape[0]
    chunks = test_chunks[:num_clips]
    if all(c["scene"] in synthetic_truth for c in chunks):
        lips, onsets, strokes = [], [], []
        for c in chunks:
            truth, start, length = synthetic_truth[c["scene"]], c["start"], c["length"]
            lips.append(truth["lip"][start : start + length].tolist())
            seconds = truth["onset_seconds"] - start / FPS
            onsets.append(seconds[(seconds >= 0) & (seconds < length / FPS)].tolist())
            if "stroke_frames" in truth:
                frames = truth["stroke_frames"] - start
                strokes.append(frames[(frames >= 0) & (frames < length)].tolist())
        return {
            "lip": lips,
            "onsets": onsets,
            "strokes": strokes if len(strokes) == len(chunks) else None,
            "onset_source": "synthetic truth",
        }
    audio = denormalise(sample_inputs["audio"], *audio_mean_std(data_stats))
    onsets = [metrics.detect_audio_onsets(clip[:, 0]).tolist() for clip in audio]
    return {"lip": None, "onsets": onsets, "strokes": None, "onset_source": "librosa onset_detect"}


def score(
    samples: dict[str, np.ndarray],
    baseline_samples: dict[str, np.ndarray],
    sample_inputs: dict[str, np.ndarray],
    data_stats: dict[str, np.ndarray],
    lip_readout: dict,
    truth: dict,
    evaluate: EvaluateParams,
) -> tuple[list[dict], str, dict]:
    """The metric table (ours and the baselines), as rows, markdown and MLflow metrics."""
    methods = {
        name: {kind: baseline_samples[f"{name}_{kind}"] for kind in ("body", "face")}
        for name in ("GT", "Random", "KNN", "Mean")
    }
    methods[OURS] = {"body": samples["body"], "face": samples["face"]}
    gt_body = _raw(sample_inputs, "gt_body", "body", data_stats)
    readout = (np.asarray(lip_readout["w"]), lip_readout["b"]) if lip_readout else None
    rows = evaluate_methods(
        methods,
        gt_body,
        _raw(sample_inputs, "gt_face", "face", data_stats),
        sample_inputs["face_valid"],
        lip_truth=None if truth["lip"] is None else np.asarray(truth["lip"]),
        lip_readout=readout,
        onsets=[np.asarray(o) for o in truth["onsets"]],
        mean_vel=metrics.mean_velocity(gt_body),
        stroke_frames=(
            None if truth.get("strokes") is None else [np.asarray(f) for f in truth["strokes"]]
        ),
        bc_sigma=evaluate.bc_sigma,
        bc_drop_seconds=evaluate.bc_drop_seconds,
        num_pairs=evaluate.num_pairs,
        seed=evaluate.seed,
    )
    ours = next(row for row in rows if row["method"] == OURS)
    tracked = {
        key: {"value": value, "step": 0}
        for key, value in ours.items()
        if key != "method" and value is not None
    }
    table = to_markdown(rows)
    logger.info("Evaluation (onsets from %s):\n%s", truth["onset_source"], table)
    return rows, table, tracked


def make_report(
    metrics_table: list[dict],
    samples: dict[str, np.ndarray],
    baseline_samples: dict[str, np.ndarray],
    sample_inputs: dict[str, np.ndarray],
    data_stats: dict[str, np.ndarray],
    lip_readout: dict,
    truth: dict,
    sampled_versions: dict,
) -> tuple[str, dict[str, Figure]]:
    """A self-contained HTML report with the table and its figures, and the figures as PNGs."""
    gt_body = _raw(sample_inputs, "gt_body", "body", data_stats)
    gt_face = _raw(sample_inputs, "gt_face", "face", data_stats)
    figures = {
        "body_trajectories": plots.plot_trajectories(samples["body"], gt_body, title="body"),
        "body_strokes": plots.plot_body_strokes(
            samples["body"],
            gt_body,
            samples["guide_poses"],
            None if truth.get("strokes") is None else np.asarray(truth["strokes"][0]),
        ),
        "face_trajectories": plots.plot_trajectories(samples["face"], gt_face, title="face"),
        "face_pca": plots.plot_face_pca(
            samples["face"], gt_face, valid=sample_inputs["face_valid"]
        ),
        "repetition_spread": plots.plot_rep_spread(
            {
                "ours body": samples["body"],
                "ours face": samples["face"],
                "Random body": baseline_samples["Random_body"],
            }
        ),
    }
    if lip_readout and truth["lip"] is not None:
        audio = denormalise(sample_inputs["audio"][0], *audio_mean_std(data_stats))
        envelope = plots.frame_envelope(audio[:, 0], samples_per_frame=SAMPLES_PER_FRAME)
        predicted = metrics.read_lip(
            samples["face"][0, 0], np.asarray(lip_readout["w"]), lip_readout["b"]
        )
        figures["lip_sync"] = plots.plot_lip_sync(envelope, np.asarray(truth["lip"][0]), predicted)
    versions = ", ".join(f"{v['name']} v{v['version']}" for v in sampled_versions.values())
    notes = f"Models: {versions}. Onsets: {truth['onset_source']}. "
    html = render_html_report(
        metrics_table,
        figures,
        title="audio2photoreal-pipelines: evaluation",
        notes=notes + beat_metrics_note(metrics_table),
    )
    return html, figures


def beat_metrics_note(metrics_table: list[dict]) -> str:
    """What BC and stroke_resp say about GT against Random, in the table's own numbers."""
    rows = {row["method"]: row for row in metrics_table}
    gt, random = rows.get("GT", {}), rows.get("Random", {})
    if gt.get("BC") is None or random.get("BC") is None:
        return ""
    note = f"BC (upstream's beat consistency) is GT {gt['BC']:.3f} vs Random {random['BC']:.3f}"
    if gt.get("stroke_resp") is None or random.get("stroke_resp") is None:
        return note + "."
    return (
        f"{note}: kept for comparison with the paper, but when it scores GT and Random alike it "
        "cannot tell motion that follows the audio from motion that does not. stroke_resp (speed "
        "in the 0.4 s after each true stroke start over the mean speed) is GT "
        f"{gt['stroke_resp']:.2f} vs Random {random['stroke_resp']:.2f}."
    )


def decide_promotion(
    metrics_table: list[dict],
    sampled_versions: dict,
    champions: dict,
    promotion: PromotionParams,
) -> dict:
    """Promote each sampled model whose group of metrics beats its current champion's."""
    ours = next(row for row in metrics_table if row["method"] == OURS)
    decisions = {}
    for kind, version in sampled_versions.items():
        if version["version"] is None:
            raise ValueError(f"The {kind} model was not loaded from the registry; cannot promote")
        rules = [rule.as_dict() for rule in promotion.rules[kind]]
        candidate = {rule["metric"]: ours[rule["metric"]] for rule in rules}
        champion = champions[kind]
        same = champion["version"] == version["version"]
        if same:
            promote, reason = False, "the candidate is already the champion"
        else:
            promote, reason = should_promote(
                candidate, champion["metrics"] if champion["version"] else None, rules
            )
        decisions[kind] = {**version, "metrics": candidate, "promote": promote, "reason": reason}
    return decisions


def bundle_sampler(
    sampled_versions: dict[str, dict],
    champions: dict[str, dict],
    data_stats: dict[str, np.ndarray],
    sample: SampleParams,
    audio_features: AudioFeatureParams,
) -> dict:
    """The person's servable sampler: the four versions sampled together, stats and settings.

    It is the champion when each of those versions is now its model's champion, so its alias
    moves with theirs by the same promotion rule.
    """
    components = {kind: sampled_versions[kind] for kind in champions}
    champion = all(
        champions[kind]["version"] is not None
        and str(champions[kind]["version"]) == str(components[kind]["version"])
        for kind in champions
    )
    return {
        "components": components,
        "data_stats": data_stats,
        "sample": sample,
        "audio_features": audio_features,
        "champion": champion,
    }
