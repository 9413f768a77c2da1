"""Diagnostic figures: the right data on the axes, no files written."""

import numpy as np
import pytest
from matplotlib.figure import Figure

from audio2photoreal_pipelines.evaluation import plots


@pytest.fixture(scope="module")
def motion():
    rng = np.random.default_rng(0)
    gt = rng.normal(size=(2, 30, 5)) * np.array([0.1, 3.0, 0.5, 2.0, 0.2])
    return gt, gt[None] + rng.normal(scale=0.1, size=(3, 2, 30, 5))


def test_most_active_dims_are_highest_gt_variance_first(motion):
    gt, _ = motion
    np.testing.assert_array_equal(plots.most_active_dims(gt, 3), [1, 3, 2])


def test_trajectories_plot_gt_and_every_rep_of_active_dims(motion):
    gt, pred = motion
    fig = plots.plot_trajectories(pred, gt, sample=1, num_dims=2)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    top = fig.axes[0]
    assert top.get_ylabel() == "dim 1" and len(top.lines) == 3 + 1
    np.testing.assert_array_equal(top.lines[-1].get_ydata(), gt[1, :, 1])


def test_body_strokes_mark_strokes_and_guide_poses_at_their_frames(motion):
    gt, pred = motion
    guide_poses = pred[:, :, ::10]
    fig = plots.plot_body_strokes(
        pred, gt, guide_poses, np.array([3, 20]), sample=1, num_dims=2, keyframe_step=10
    )
    top = fig.axes[0]
    assert top.get_ylabel() == "dim 1"
    strokes = [line for line in top.lines if line.get_label() == "true stroke starts"]
    vertical = [line for line in top.lines[:2] if np.ptp(line.get_xdata()) == 0]
    np.testing.assert_allclose(sorted(line.get_xdata()[0] for line in vertical), [0.1, 20 / 30])
    assert len(strokes) == 1
    guides = [line for line in top.lines if line.get_marker() == "o"]
    assert len(guides) == 3
    np.testing.assert_allclose(guides[0].get_xdata(), np.arange(3) * 10 / 30)
    np.testing.assert_array_equal(guides[2].get_ydata(), guide_poses[2, 1, :, 1])
    np.testing.assert_array_equal(top.lines[-2].get_ydata(), gt[1, :, 1])


def test_face_pca_projects_gt_and_predictions(motion):
    gt, pred = motion
    fig = plots.plot_face_pca(pred, gt, valid=np.ones(gt.shape[:2], dtype=bool), max_points=40)
    sizes = [c.get_offsets().shape[0] for c in fig.axes[0].collections]
    assert sizes == [40, 40]


def test_lip_sync_plot_has_envelope_truth_and_predictions():
    lip = np.sin(np.linspace(0, 6, 90))
    fig = plots.plot_lip_sync(np.abs(lip), lip, np.stack([lip, 0.5 * lip]))
    env_ax, lip_ax = fig.axes
    assert len(env_ax.lines) == 1 and len(lip_ax.lines) == 3


def test_rep_spread_is_std_across_reps(motion):
    _, pred = motion
    fig = plots.plot_rep_spread({"ours": pred, "mean": np.zeros_like(pred)})
    ours, mean = fig.axes[0].lines
    np.testing.assert_allclose(ours.get_ydata(), pred.std(axis=0).mean(axis=(0, 2)))
    assert not mean.get_ydata().any()


def test_frame_envelope_by_hand():
    wave = np.concatenate([np.full(4, 2.0), np.array([3.0, -3.0, 3.0, -3.0]), [9.0]])
    np.testing.assert_allclose(plots.frame_envelope(wave, samples_per_frame=4), [2.0, 3.0])
