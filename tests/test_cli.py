"""The command lines users type: ``kedro run --pipeline`` (deprecated) and ``--pipelines``."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from filelock import FileLock
from mlflow import MlflowClient

from audio2photoreal_pipelines.training.distributed import free_port
from tests.conftest import TINY_PERSON

KEDRO = str(Path(sys.executable).with_name("kedro"))


def _kedro(project: Path, *args: str, **params: str) -> subprocess.CompletedProcess:
    params = ",".join(f"{key}={value}" for key, value in {**TINY_PERSON, **params}.items())
    return subprocess.run(
        [KEDRO, "run", *args, "--params", params],
        cwd=project,
        env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_kedro_run_ingest_with_the_deprecated_pipeline_flag(project_copy: Path) -> None:
    # `--pipelines` runs succeed in test_kill_through_kedro_run.py and test_default_run.py.
    result = _kedro(project_copy, "--pipeline", "ingest")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Pipeline execution completed successfully" in result.stdout + result.stderr
    assert (project_copy / "data" / "05_model_input" / "SYN001" / "data_stats.pth").is_file()


@pytest.mark.slow
def test_bad_input_is_one_clear_message_not_a_traceback(project_copy: Path) -> None:
    result = _kedro(project_copy, "--pipelines", "ingest", **{"dataset.source": "ftp"})
    assert result.returncode == 1
    last_lines = result.stderr.strip().splitlines()[-2:]
    assert last_lines[0] == (
        "Error: parameter dataset.source: Input should be 'synthetic', 'url' or 'local', "
        "got 'ftp' (set in --params)"
    )
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_a_second_run_of_a_busy_project_refuses_at_once(project_copy: Path) -> None:
    (project_copy / "data" / ".kedro-run.pid").write_text("4242\n")
    with FileLock(project_copy / "data" / ".kedro-run.lock"):
        result = _kedro(project_copy, "--pipelines", "ingest")
    assert result.returncode == 1
    assert "another `kedro run` (pid 4242) is using this project" in result.stderr
    assert "Traceback" not in result.stderr
    assert not any((project_copy / "data" / "02_intermediate").iterdir()), "no node may have run"


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["corrupt", "locked", "read-only"])
def test_a_broken_mlflow_store_is_reported_before_any_node_runs(project_copy: Path, fault: str):
    store = project_copy / "mlflow.db"
    if fault == "corrupt":
        store.write_bytes(b"not a database" * 100)
    else:
        MlflowClient(f"sqlite:///{store}").search_experiments()  # a valid, empty store
    before = store.read_bytes()
    if fault == "read-only":
        # chmod does not stop root, so the file is made immutable; skip where that is not allowed.
        if subprocess.run(["chattr", "+i", str(store)], capture_output=True).returncode != 0:
            pytest.skip("chattr +i is not permitted here: cannot make mlflow.db read-only")
    holder = sqlite3.connect(store, isolation_level=None)
    try:
        if fault == "locked":
            holder.execute("BEGIN EXCLUSIVE")  # another process writing, as far as MLflow sees
        result = _kedro(project_copy, "--pipelines", "ingest")
    finally:
        holder.close()
        if fault == "read-only":
            subprocess.run(["chattr", "-i", str(store)], check=True)
    assert result.returncode == 1, result.stderr[-3000:]
    reason = {
        "corrupt": "file is not a database",
        "locked": "database is locked",
        "read-only": "attempt to write a readonly database",
    }[fault]
    assert f"mlflow.db cannot be used: {reason}" in result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert store.read_bytes() == before, "the store is left as it was"
    assert not any((project_copy / "data" / "02_intermediate").iterdir()), "no node may have run"


@pytest.mark.slow
def test_a_person_id_that_is_a_path_is_refused_before_anything_runs(project_copy):
    result = _kedro(project_copy, "--pipelines", "ingest", **{"dataset.person": "../x"})
    assert result.returncode == 1
    assert "dataset.person must be letters, digits, '_' or '-'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not any((project_copy / "data" / "02_intermediate").iterdir())
    assert not (project_copy / "data" / "x").exists() and not (project_copy / "x").exists()


@pytest.mark.slow
def test_an_unreachable_tracking_server_is_reported_in_seconds(project_copy: Path) -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    local = project_copy / "conf" / "local"
    local.mkdir(parents=True, exist_ok=True)
    (local / "mlflow.yml").write_text(f"server:\n  mlflow_tracking_uri: {uri}\n")
    result = _kedro(project_copy, "--pipelines", "ingest")  # MLflow alone retries ~4 min
    assert result.returncode == 1
    assert f"Error: the MLflow tracking server {uri} cannot be reached" in result.stderr
    assert "Traceback" not in result.stderr
    assert not any((project_copy / "data" / "02_intermediate").iterdir()), "no node may have run"
