"""Each ``evaluate`` node on small scenes, made-up samples and made-up registry champions."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from threadpoolctl import threadpool_limits

from audio2photoreal_pipelines.data.normalise import (
    audio_mean_std,
    denormalise,
    motion_mean_std,
    normalise,
)
from audio2photoreal_pipelines.data.scenes import discover_scenes, face_valid_mask
from audio2photoreal_pipelines.data.stats import compute_data_stats
from audio2photoreal_pipelines.evaluation.table import COLUMNS
from audio2photoreal_pipelines.parameters import AudioFeatureParams, EvaluateParams, PromotionParams
from audio2photoreal_pipelines.pipelines.evaluate import nodes
from audio2photoreal_pipelines.pipelines.ingest.nodes import compute_audio_features
from audio2photoreal_pipelines.pipelines.sample.nodes import prepare_inputs
from audio2photoreal_pipelines.serving import SampleParams
from tests.conftest import PROJECT_ROOT
from tests.data.conftest import write_scenes

N_MELS = 4
REPS = 2
LENGTH = 90
SPLITS = {"train": ["scene01", "scene02"], "val": [], "test": ["scene03", "scene04"]}
CHUNKS = [
    {"scene": "scene03", "start": 30, "length": LENGTH},
    {"scene": "scene04", "start": 0, "length": LENGTH},
]
KINDS = ("vq", "guide", "face", "pose")
PARAMS = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_evaluate.yml").read_text())
EVALUATE = EvaluateParams.model_validate(
    {**PARAMS["evaluate"], "baseline_stride": 30, "num_pairs": 200, "bc_drop_seconds": 0.5}
)
PROMOTION = PARAMS["promotion"]


@pytest.fixture(autouse=True, scope="module")
def single_blas_thread():
    """One BLAS thread: on busy shared cores OpenBLAS threads spin (eigh 256 x 256: 0.5 s)."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.fixture(scope="module")
def person(tmp_path_factory):
    """Two 200-frame train scenes, two test scenes, their stats, features and a lip truth."""
    scenes = discover_scenes(
        write_scenes(tmp_path_factory.mktemp("person") / "P1", [200, 200, 120, 150])
    )
    masks = {name: face_valid_mask(scene) for name, scene in scenes.items()}
    stats = compute_data_stats(scenes, masks, SPLITS["train"])
    features = compute_audio_features(
        scenes, stats, None, AudioFeatureParams(n_mels=N_MELS, feature_dim=2 * N_MELS)
    )
    rng = np.random.default_rng(1)
    w, b = rng.normal(size=256), 0.7
    # The lip driver is a linear readout of the face code; missing face frames hold garbage
    # there, so the driver is set to b at those frames.
    truth = {
        name: {
            "lip": np.where(masks[name], np.asarray(scene.face_expression, np.float64) @ w + b, b),
            "onset_seconds": np.sort(rng.uniform(0, scene.num_frames / 30, 12)),
        }
        for name, scene in scenes.items()
    }
    return scenes, masks, stats, features, truth, (w, b)


@pytest.fixture(scope="module")
def inputs(person):
    """The sample pipeline's inputs for the two test chunks."""
    scenes, masks, stats, features, _, _ = person
    sample = SampleParams(seed=0)
    features_params = AudioFeatureParams(n_mels=N_MELS, feature_dim=2 * N_MELS)
    return prepare_inputs(
        scenes, masks, stats, features, CHUNKS, None, None, sample, features_params
    )


def _raw_gt(inputs, stats, kind: str) -> np.ndarray:
    return denormalise(inputs[f"gt_{kind}"], *motion_mean_std(stats, kind))


@pytest.fixture(scope="module")
def samples(person, inputs):
    """'Our' samples: the raw GT plus noise, (R, S, T, F), and the body's 1 fps guide poses."""
    stats, rng = person[2], np.random.default_rng(2)
    motion = {
        kind: _raw_gt(inputs, stats, kind) + rng.normal(0, 0.5, (REPS, 2, LENGTH, dim))
        for kind, dim in (("body", 104), ("face", 256))
    }
    return {**motion, "guide_poses": motion["body"][:, :, ::30]}


@pytest.fixture(scope="module")
def pool(person, inputs):
    scenes, masks, stats, features, _, _ = person
    return nodes.build_baseline_pool(scenes, masks, stats, features, SPLITS, inputs, EVALUATE)


@pytest.fixture(scope="module")
def baselines(person, inputs, samples, pool):
    return nodes.make_baselines(pool, inputs, samples, person[2], EVALUATE)


@pytest.fixture(scope="module")
def scored(person, inputs, samples, baselines):
    """(rows, markdown, tracked, lip_readout, truth) of ``score`` on the synthetic lip truth."""
    scenes, masks, stats, _, truth, _ = person
    readout = nodes.fit_lip_readout(scenes, masks, truth, SPLITS)
    clip = nodes.clip_truth(CHUNKS, truth, inputs, stats)
    rows, table, tracked = nodes.score(samples, baselines, inputs, stats, readout, clip, EVALUATE)
    return rows, table, tracked, readout, clip


def test_baseline_pool_holds_every_strided_train_chunk(person, pool):
    scenes = person[0]

    # Starts 0, 30, 60, 90 in each 200-frame train scene.
    assert pool["body"].shape == (8, LENGTH, 104)
    assert pool["face"].shape == (8, LENGTH, 256)
    assert pool["audio_features"].shape == (8, 300, 2 * N_MELS)
    expected = np.asarray(scenes["scene02"].body_pose[30 : 30 + LENGTH])
    np.testing.assert_allclose(pool["body"][5], expected, rtol=1e-5, atol=1e-4)


def test_baseline_pool_needs_a_train_scene_as_long_as_the_clips(person):
    scenes, masks, stats, features, _, _ = person
    long_clips = {"length_mask": np.ones((1, 250), dtype=bool)}

    with pytest.raises(ValueError, match="No train scene is 250 frames long"):
        nodes.build_baseline_pool(scenes, masks, stats, features, SPLITS, long_clips, EVALUATE)


def test_baselines_are_gt_random_knn_and_mean(person, inputs, pool, baselines):
    stats = person[2]

    for kind, dim in (("body", 104), ("face", 256)):
        gt = _raw_gt(inputs, stats, kind)
        for method in ("GT", "Random", "KNN", "Mean"):
            assert baselines[f"{method}_{kind}"].shape == (REPS, 2, LENGTH, dim)
        np.testing.assert_array_equal(baselines[f"GT_{kind}"][1], gt)
        means = np.broadcast_to(motion_mean_std(stats, kind)[0], (REPS, 2, LENGTH, dim))
        np.testing.assert_allclose(baselines[f"Mean_{kind}"], means)
    flat_pool = pool["body"].reshape(8, -1)
    for clip in baselines["Random_body"].reshape(REPS * 2, -1):
        assert (flat_pool == clip).all(axis=1).any()
    # The R repetitions of a sample are different train chunks.
    assert not np.array_equal(baselines["Random_body"][0, 0], baselines["Random_body"][1, 0])
    assert not np.array_equal(baselines["KNN_body"][0, 0], baselines["KNN_body"][1, 0])


def test_make_baselines_refuses_a_user_wav_without_ground_truth(person, pool, samples):
    user_inputs = {
        "audio": np.zeros((1, LENGTH * 1600, 2), np.float32),
        "audio_features": np.zeros((1, 300, 2 * N_MELS), np.float32),
        "length_mask": np.ones((1, LENGTH), dtype=bool),
    }

    with pytest.raises(ValueError, match="has no GT"):
        nodes.make_baselines(pool, user_inputs, samples, person[2], EVALUATE)


def test_lip_readout_recovers_the_linear_map_from_train_frames_only(person):
    scenes, masks, _, _, truth, (w, b) = person
    rng = np.random.default_rng(3)
    # Test scenes get an unrelated lip signal: fitting on them would spoil the map.
    spoiled = {
        name: {**t, "lip": rng.normal(size=t["lip"].shape)} if name in SPLITS["test"] else t
        for name, t in truth.items()
    }

    readout = nodes.fit_lip_readout(scenes, masks, spoiled, SPLITS)

    np.testing.assert_allclose(readout["w"], w, atol=1e-6)
    assert readout["b"] == pytest.approx(b, abs=1e-6)


def test_lip_readout_is_empty_for_a_real_person(person):
    scenes, masks = person[:2]

    assert nodes.fit_lip_readout(scenes, masks, {}, SPLITS) == {}


def test_synthetic_clip_truth_is_relative_to_each_chunk():
    truth = {
        "scene03": {
            "lip": np.arange(200.0),
            "onset_seconds": np.array([0.5, 1.2, 2.0, 3.9, 4.0]),
            "stroke_frames": np.array([10, 31, 119, 120, 150]),
        },
        "scene04": {
            "lip": -np.arange(200.0),
            "onset_seconds": np.array([0.0, 2.99, 3.0]),
            "stroke_frames": np.array([0, 89, 90]),
        },
    }
    chunks = [*CHUNKS, {"scene": "scene03", "start": 0, "length": LENGTH}]
    inputs = {"length_mask": np.ones((2, LENGTH), dtype=bool)}

    clip = nodes.clip_truth(chunks, truth, inputs, {})

    assert clip["onset_source"] == "synthetic truth"
    assert clip["lip"] == [list(range(30, 120)), [-float(i) for i in range(LENGTH)]]
    # scene03 starts at 1.0 s; a 3 s chunk keeps onsets in [0, 3).
    assert clip["onsets"][0] == pytest.approx([0.2, 1.0, 2.9])
    assert clip["onsets"][1] == pytest.approx([0.0, 2.99])
    assert clip["strokes"] == [[1, 89], [0, 89]]  # frames of each chunk, inside it


def _tone_bursts(starts: list[float], seconds: float, rate: int = 48_000) -> np.ndarray:
    """440 Hz bursts with a 5 ms attack and a 50 ms decay, starting at ``starts`` (s)."""
    t = np.arange(round(seconds * rate)) / rate
    wave = np.zeros_like(t)
    for start in starts:
        since = np.clip(t - start, 0.0, None)
        envelope = (t >= start) * np.minimum(since / 0.005, 1.0) * np.exp(-since / 0.05)
        wave += 0.5 * envelope * np.sin(2 * np.pi * 440 * t)
    return wave


def test_real_clip_onsets_are_detected_in_the_person_channel(person):
    stats = person[2]
    person_starts = [0.5, 1.5, 2.25, 3.2]
    raw = np.stack([_tone_bursts(person_starts, 4.0), _tone_bursts([1.0, 2.7], 4.0)], axis=1)
    inputs = {
        "audio": normalise(raw.astype(np.float32), *audio_mean_std(stats))[None],
        "length_mask": np.ones((1, 120), dtype=bool),
    }

    clip = nodes.clip_truth([{"scene": "scene09", "start": 0, "length": 120}], {}, inputs, stats)

    assert clip["lip"] is None and clip["onset_source"] == "librosa onset_detect"
    detected = np.asarray(clip["onsets"][0])
    lag = detected[:, None] - np.asarray(person_starts)[None]
    # Every burst is found, and every detection follows a burst of channel 0 within 80 ms.
    assert ((lag >= 0) & (lag < 0.08)).any(axis=0).all()
    assert ((lag >= 0) & (lag < 0.08)).any(axis=1).all()


def test_score_rows_cover_every_method_with_a_sane_gt_row(person, inputs, scored):
    rows, table, _, _, _ = scored
    by_method = {row["method"]: row for row in rows}
    stats = person[2]
    gt_body = _raw_gt(inputs, stats, "body").reshape(-1, 104)
    gt_face = _raw_gt(inputs, stats, "face")[inputs["face_valid"]]
    spread_body = np.trace(np.cov(gt_body, rowvar=False))
    spread_face = np.trace(np.cov(gt_face, rowvar=False))

    assert [row["method"] for row in rows] == ["GT", "Random", "KNN", "Mean", "Ours"]
    assert all(set(row) == set(COLUMNS) for row in rows)
    gt, ours = by_method["GT"], by_method["Ours"]
    # GT repeated R times has covariance c·Σ, c = R(n-1)/(Rn-1), so FD = tr Σ (1 - √c)² ≈ 0.
    n = gt_body.shape[0]
    c = REPS * (n - 1) / (REPS * n - 1)
    assert gt["FD_g"] == pytest.approx(spread_body * (1 - np.sqrt(c)) ** 2, rel=1e-3)
    assert gt["FD_g"] < 1e-5 * spread_body and gt["face_FD"] < 1e-5 * spread_face
    assert ours["FD_g"] > 100 * gt["FD_g"] and ours["face_FD"] > 100 * gt["face_FD"]
    assert gt["face_L2"] == 0 and gt["Div_sample"] == 0
    assert ours["face_L2"] > 0 and ours["Div_sample"] > 0
    assert gt["lip_corr"] > 0.5 > abs(by_method["Random"]["lip_corr"])
    assert by_method["Mean"]["lip_corr"] == 0  # a constant face has no correlation
    assert all(isinstance(row["BC"], float) for row in rows if row["method"] != "Mean")
    assert table.count("\n") == 2 + len(rows) and "| Ours |" in table


def test_score_tracks_our_row_as_mlflow_metrics(scored):
    rows, _, tracked, _, _ = scored
    ours = rows[-1]

    assert {"FD_g", "FD_k", "face_L2", "face_FD", "lip_corr", "BC"} <= set(tracked)
    assert "method" not in tracked
    for name, entry in tracked.items():
        assert entry == {"value": ours[name], "step": 0}
        assert isinstance(entry["value"], float)


def test_report_embeds_the_table_and_every_figure(person, inputs, samples, baselines, scored):
    rows, _, _, readout, clip = scored
    versions = {kind: {"name": f"a2p-P1-{kind}", "version": "3"} for kind in KINDS}

    html, figures = nodes.make_report(
        rows, samples, baselines, inputs, person[2], readout, clip, versions
    )

    assert set(figures) == {
        "body_trajectories",
        "face_trajectories",
        "face_pca",
        "repetition_spread",
        "lip_sync",
        "body_strokes",
    }
    assert '<table class="metrics">' in html
    assert all(f"<td>{row['method']}</td>" in html for row in rows)
    assert html.count('src="data:image/png;base64,') == len(figures)
    assert "a2p-P1-vq v3" in html and "synthetic truth" in html


def test_beat_note_quotes_bc_and_the_stroke_response_of_gt_and_random():
    rows = [
        {"method": "GT", "BC": 0.84, "stroke_resp": 2.2},
        {"method": "Random", "BC": 0.84, "stroke_resp": 1.0},
    ]
    note = nodes.beat_metrics_note(rows)
    assert "GT 0.840 vs Random 0.840" in note and "GT 2.20 vs Random 1.00" in note
    assert "cannot tell" in note
    real_person = [{**row, "stroke_resp": None} for row in rows]
    assert nodes.beat_metrics_note(real_person).endswith("vs Random 0.840.")
    assert nodes.beat_metrics_note([{"method": "GT", "BC": None}]) == ""


def _table(ours: dict[str, float]) -> list[dict]:
    # A perfect GT row first: promotion must judge the Ours row, not the first one.
    perfect = dict.fromkeys(ours, 0.0)
    return [{"method": "GT", **perfect}, {"method": "Ours", **ours}]


def _versions(version: str | None) -> dict:
    return {kind: {"name": f"a2p-{kind}", "version": version} for kind in KINDS}


def _random_modes(rng: np.random.Generator) -> dict:
    """The project's promotion rules with each metric's direction drawn at random."""
    return {
        "rules": {
            kind: [{**rule, "mode": str(rng.choice(["min", "max"]))} for rule in rules]
            for kind, rules in PROMOTION["rules"].items()
        }
    }


@pytest.mark.parametrize("random_modes", [False, True])
def test_promotion_never_promotes_a_worse_candidate(random_modes):
    rng = np.random.default_rng(4)
    metrics = sorted({rule["metric"] for rules in PROMOTION["rules"].values() for rule in rules})
    outcomes = set()
    for _ in range(300):
        promotion = _random_modes(rng) if random_modes else PROMOTION
        # Few distinct values, so ties (neither better nor worse) are common.
        ours = {m: float(rng.integers(0, 3)) for m in metrics}
        champions = {
            kind: {
                "name": f"a2p-{kind}",
                "version": "1",
                "metrics": {m: float(rng.integers(0, 3)) for m in metrics},
            }
            for kind in KINDS
        }

        decisions = nodes.decide_promotion(
            _table(ours), _versions("2"), champions, PromotionParams.model_validate(promotion)
        )

        for kind, decision in decisions.items():
            rules = promotion["rules"][kind]
            champion = champions[kind]["metrics"]
            gains = [
                (1 if r["mode"] == "max" else -1) * (ours[r["metric"]] - champion[r["metric"]])
                for r in rules
            ]
            assert decision["promote"] == (min(gains) >= 0 and max(gains) > 0), decision
            assert decision["metrics"] == {r["metric"]: ours[r["metric"]] for r in rules}
            assert decision["version"] == "2" and decision["name"] == f"a2p-{kind}"
            outcomes.add(decision["promote"])
    assert outcomes == {True, False}


def test_the_champion_itself_is_kept_even_when_its_numbers_improve():
    ours = {"FD_g": 1.0, "FD_k": 1.0, "face_L2": 1.0, "face_FD": 1.0}
    champions = {
        kind: {"name": f"a2p-{kind}", "version": "2", "metrics": dict.fromkeys(ours, 9.0)}
        for kind in KINDS
    }

    decisions = nodes.decide_promotion(
        _table(ours), _versions("2"), champions, PromotionParams.model_validate(PROMOTION)
    )

    assert not any(d["promote"] for d in decisions.values())
    assert all("already the champion" in d["reason"] for d in decisions.values())


def test_a_candidate_is_promoted_when_there_is_no_champion():
    ours = {"FD_g": 5.0, "FD_k": 5.0, "face_L2": 5.0, "face_FD": 5.0}
    champions = {kind: {"name": f"a2p-{kind}", "version": None, "metrics": {}} for kind in KINDS}

    decisions = nodes.decide_promotion(
        _table(ours), _versions("1"), champions, PromotionParams.model_validate(PROMOTION)
    )

    assert all(d["promote"] and d["reason"] == "no champion yet" for d in decisions.values())


def test_promotion_refuses_a_model_that_is_not_from_the_registry():
    ours = {"FD_g": 1.0, "FD_k": 1.0, "face_L2": 1.0, "face_FD": 1.0}
    versions = {**_versions("1"), "guide": {"name": None, "version": None}}
    champions = {kind: {"name": f"a2p-{kind}", "version": None, "metrics": {}} for kind in KINDS}

    with pytest.raises(ValueError, match="guide model was not loaded from the registry"):
        nodes.decide_promotion(
            _table(ours), versions, champions, PromotionParams.model_validate(PROMOTION)
        )
