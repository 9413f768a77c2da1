"""``kedro run`` (``__default__``) end to end on a tiny synthetic person with tiny settings."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from audio2photoreal_pipelines.serving import input_example
from tests.conftest import TINY_PERSON, run_session, use_project_store
from tests.data.conftest import write_speech_wav

KINDS = ("vq", "guide", "face", "pose")
TINY_RUN = {
    **{f"{kind}.train.steps": 6 for kind in KINDS},
    **{f"{kind}.train.batch_size": 2 for kind in KINDS},
    **{f"{kind}.train.log_every": 3 for kind in KINDS},
    **{f"{kind}.train.checkpoint_every": 3 for kind in KINDS},
    "sample.max_clips": 2,
    "sample.num_repetitions": 2,
    "sample.steps": 5,
    "evaluate.baseline_stride": 30,
    "evaluate.num_pairs": 500,
}
KEDRO = str(Path(sys.executable).with_name("kedro"))


def _kill_when_saving(project: Path, pipeline: str, dataset: str) -> None:
    """``kedro run --pipelines <pipeline>`` killed with SIGKILL as it starts saving `dataset`."""
    dotted = ",".join(f"{k}={v}" for k, v in {**TINY_PERSON, **TINY_RUN}.items())
    victim = subprocess.Popen(
        [KEDRO, "run", "--pipelines", pipeline, "--params", dotted],
        cwd=project,
        env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "OMP_NUM_THREADS": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen = []
    for line in victim.stdout:
        seen.append(line)
        if f"Saving data to {dataset} " in line:
            os.kill(victim.pid, signal.SIGKILL)
            break
    victim.wait(timeout=60)
    assert victim.returncode == -signal.SIGKILL, "".join(seen)[-3000:]


@pytest.mark.slow
def test_default_run_reports_and_promotes_four_champions(project_copy):
    run_session(project_copy, ["__default__"], **TINY_RUN)
    data = project_copy / "data"

    rows = json.loads((data / "08_reporting" / "SYN001" / "metrics.json").read_text())
    assert [r["method"] for r in rows] == ["GT", "Random", "KNN", "Mean", "Ours"]
    gt = rows[0]
    assert abs(gt["FD_g"]) < 1e-4 and abs(gt["face_FD"]) < 1e-4 and gt["face_L2"] == 0
    assert rows[-1]["Div_sample"] > 0 and rows[-1]["lip_corr"] is not None
    report = (data / "08_reporting" / "SYN001" / "report.html").read_text()
    assert "<table" in report and report.count("data:image/png;base64,") >= 4
    assert sorted(p.name for p in (data / "08_reporting" / "SYN001" / "figures").iterdir())

    results = np.load(
        data / "07_model_output" / "SYN001" / "body" / "results.npy", allow_pickle=True
    ).item()
    assert results["motions"].shape == (4, 104, 1, 600)
    assert results["audio"].shape == (4, 600 * 1600, 2) and results["keyframes"].shape == (
        4,
        20,
        104,
    )
    face = np.load(
        data / "07_model_output" / "SYN001" / "face" / "results.npy", allow_pickle=True
    ).item()
    assert face["motions"].shape == (4, 256, 1, 600) and face["keyframes"].shape == (4, 600, 256)

    use_project_store(project_copy)
    client = MlflowClient()
    for kind in KINDS:
        champion = client.get_model_version_by_alias(f"a2p-SYN001-{kind}", "champion")
        assert str(champion.version) == "1"
        assert any(key.startswith("metric.") for key in champion.tags)
    (run,) = client.search_runs(
        [client.get_experiment_by_name("audio2photoreal_pipelines").experiment_id]
    )
    assert "evaluation_metrics.face_L2" in run.data.metrics
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert artifacts >= {"metrics.json", "report.html", "promotions.json"}

    # The servable sampler bundles the four champions and is the champion with them.
    sampler = client.get_model_version_by_alias("a2p-SYN001-sampler", "champion")
    assert {sampler.tags[f"component.{kind}"] for kind in KINDS} == {
        f"a2p-SYN001-{kind}/1" for kind in KINDS
    }
    served = mlflow.pyfunc.load_model("models:/a2p-SYN001-sampler@champion")
    motion = served.predict(input_example(seconds=1.5))
    assert motion["face"].shape == (2, 45, 256) and motion["body"].shape == (2, 45, 104)

    # Run to run, the same seed and configuration give the same samples and metric table.
    outputs = data / "07_model_output" / "SYN001"
    first_samples = dict(np.load(outputs / "samples.npz"))
    first_rows = json.loads((data / "08_reporting" / "SYN001" / "metrics.json").read_text())
    # Killed with SIGKILL as they save, sample and evaluate leave every output whole: the
    # previous one or the new one, never a part. The run after the kills gives the same again.
    metrics_json = data / "08_reporting" / "SYN001" / "metrics.json"
    _kill_when_saving(project_copy, "sample", "samples")
    killed_samples = dict(np.load(outputs / "samples.npz"))
    for key, array in first_samples.items():
        np.testing.assert_array_equal(array, killed_samples[key], err_msg=key)
    _kill_when_saving(project_copy, "evaluate", "metrics_table")
    assert json.loads(metrics_json.read_text()) == first_rows
    run_session(project_copy, ["sample", "evaluate"], **TINY_RUN)
    second_samples = dict(np.load(outputs / "samples.npz"))
    assert first_samples.keys() == second_samples.keys()
    for key, array in first_samples.items():
        np.testing.assert_array_equal(array, second_samples[key], err_msg=key)
    assert json.loads((data / "08_reporting" / "SYN001" / "metrics.json").read_text()) == first_rows

    # A user's wav given on the command line reaches the sample node through the catalog.
    wav = write_speech_wav(project_copy / "take.wav", 1.5)
    run_session(project_copy, ["sample"], **TINY_RUN, **{"sample.audio": str(wav)})
    user_samples = dict(np.load(outputs / "samples.npz"))
    assert user_samples["body"].shape == (2, 1, 45, 104)
    assert user_samples["face"].shape == (2, 1, 45, 256)
