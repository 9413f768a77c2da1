"""The metric table: GT sanity row, missing columns, JSON-ready rows, markdown formatting."""

import json

import numpy as np
import pytest

from audio2photoreal_pipelines.evaluation import baselines, metrics, table


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    body = np.cumsum(rng.normal(size=(3, 60, 6)), axis=1)
    w = rng.normal(size=5)
    face = rng.normal(size=(3, 60, 5))
    valid = np.ones((3, 60), dtype=bool)
    valid[0, :10] = False
    return {"body": body, "face": face, "valid": valid, "lip": face @ w + 0.5, "readout": (w, 0.5)}


def _evaluate(data, methods):
    return table.evaluate_methods(
        methods,
        data["body"],
        data["face"],
        data["valid"],
        lip_truth=data["lip"],
        lip_readout=data["readout"],
        num_pairs=100,
    )


def test_gt_sanity_row_scores_perfectly(data):
    methods = {
        "GT": {
            "body": baselines.gt_baseline(data["body"]),
            "face": baselines.gt_baseline(data["face"]),
        }
    }
    (row,) = _evaluate(data, methods)
    assert row["method"] == "GT"
    for col in ("FD_g", "FD_k", "face_FD", "face_L2", "Div_sample", "lip_err"):
        assert abs(row[col]) < 1e-8, col
    assert row["lip_corr"] == pytest.approx(1.0)


def test_rows_have_every_column_and_none_when_unavailable(data):
    methods = {
        "body only": {
            "body": baselines.mean_baseline(data["body"].mean((0, 1)), (2, 3, 60, 6)),
            "face": None,
        }
    }
    (row,) = _evaluate(data, methods)
    assert list(row) == list(table.COLUMNS)
    assert row["face_FD"] is None and row["lip_corr"] is None and row["BC"] is None
    assert row["Div_sample"] == 0.0 and row["FD_g"] > 0


def test_rows_are_strict_json(data):
    methods = {
        "mean": {
            "body": baselines.mean_baseline(np.zeros(6), (1, 3, 60, 6)),
            "face": baselines.mean_baseline(np.zeros(5), (1, 3, 60, 5)),
        }
    }
    rows = _evaluate(data, methods)
    assert json.loads(json.dumps(rows, allow_nan=False)) == rows


def test_bc_column_uses_onsets(data):
    methods = {"GT": {"body": baselines.gt_baseline(data["body"])}}
    rows = table.evaluate_methods(
        methods,
        data["body"],
        None,
        None,
        num_pairs=100,
        onsets=[np.array([1.0])] * 3,
        mean_vel=1.0,
        bc_drop_seconds=0.0,
    )
    expected = metrics.beat_consistency_clips(
        data["body"], [np.array([1.0])] * 3, mean_vel=1.0, drop_seconds=0.0
    )
    assert rows[0]["BC"] == pytest.approx(expected)


def test_stroke_column_uses_the_stroke_frames(data):
    strokes = [np.array([5, 30]), np.array([12]), np.array([], dtype=int)]
    methods = {"GT": {"body": baselines.gt_baseline(data["body"])}}
    rows = table.evaluate_methods(
        methods, data["body"], None, None, num_pairs=100, stroke_frames=strokes
    )
    assert rows[0]["stroke_resp"] == pytest.approx(metrics.stroke_response(data["body"], strokes))
    assert _evaluate(data, methods)[0]["stroke_resp"] is None


def test_shape_mismatch_names_the_method(data):
    with pytest.raises(ValueError, match="'bad' body"):
        _evaluate(data, {"bad": {"body": np.zeros((1, 3, 59, 6))}})


def test_markdown_has_header_and_four_significant_digits():
    rows = [{"method": "ours", "FD_g": 3.14159265, "Div_g": 12345.678, "BC": None}]
    md = table.to_markdown(rows)
    header, rule, line = md.strip().splitlines()
    assert header.split("|")[1].strip() == "method"
    cells = [c.strip() for c in line.split("|")[1:-1]]
    assert cells[table.COLUMNS.index("FD_g")] == "3.142"
    assert cells[table.COLUMNS.index("Div_g")] == "1.235e+04"
    assert cells[table.COLUMNS.index("BC")] == "–"
