"""Fixtures shared by the whole suite."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # One intra-op thread per parallel worker (and for the processes it starts): workers that
    # each take every core slow each other down many times over.
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
UPSTREAM_DATA = PROJECT_ROOT.parent / "shared" / "upstream-data"

# A small synthetic person: 8 scenes of 21-25 s keep 2 train scenes after the faceless one is
# dropped and 2 + 4 are held out, and every test scene still fits one 600-frame chunk.
TINY_PERSON = {
    "synthetic.num_scenes": 8,
    "synthetic.min_seconds": 21,
    "synthetic.max_seconds": 25,
}


def load_script(name: str):
    """The module ``scripts/<name>.py``: scripts are not in the package, so load one by its path."""
    spec = importlib.util.spec_from_file_location(name, PROJECT_ROOT / "scripts" / f"{name}.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def project_parameters(env: str = "base") -> dict:
    """The parameters `kedro run --env <env>` sees in this checkout."""
    from audio2photoreal_pipelines.parameters import load_parameters

    return load_parameters(PROJECT_ROOT / "conf", env)


def nested_params(dotted: dict) -> dict:
    """``{"a.b": 1}`` as ``{"a": {"b": 1}}``, the form ``--params a.b=1`` gives a session."""
    out: dict = {}
    for key, value in dotted.items():
        *parents, leaf = key.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def run_session(project: Path, pipelines: list[str], **dotted_params) -> dict:
    """Run ``pipelines`` in ``project`` as ``kedro run --pipelines ... --params ...`` would."""
    import mlflow
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project)
    params = nested_params({**TINY_PERSON, **dotted_params})
    try:
        with KedroSession.create(project_path=project, runtime_params=params) as session:
            return session.run(pipeline_names=pipelines)
    finally:
        # kedro-mlflow re-enters its run in each node's thread, so one run can outlive the
        # session; a second session in the same process would otherwise log into it.
        while mlflow.active_run() is not None:
            mlflow.end_run()


@pytest.fixture(autouse=True)
def isolated_mlflow_state(monkeypatch: pytest.MonkeyPatch):
    """Start every test with MLflow's process-wide state unset, and end any run it leaves.

    MLflow keeps the tracking and registry URIs and the active experiment in module globals and
    environment variables; a session in one test's project copy would otherwise steer the next
    test to its store. The globals are private, hence the explicit module paths.
    """
    import mlflow
    from mlflow.tracking import fluent
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    for var in (
        "MLFLOW_TRACKING_URI",
        "MLFLOW_REGISTRY_URI",
        "MLFLOW_EXPERIMENT_ID",
        "MLFLOW_EXPERIMENT_NAME",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(tracking_utils, "_tracking_uri", None)
    monkeypatch.setattr(registry_utils, "_registry_uri", None)
    monkeypatch.setattr(fluent, "_active_experiment_id", None)
    yield
    while mlflow.active_run() is not None:
        mlflow.end_run()


def use_project_store(project: Path) -> None:
    """Point this process's MLflow tracking and registry at ``project``'s ``mlflow.db``."""
    import mlflow

    uri = f"sqlite:///{project / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)


@pytest.fixture
def upstream_stats_dir() -> Path:
    """The real upstream data_stats.pth files, or a skip where they are absent (a fresh clone)."""
    if not UPSTREAM_DATA.is_dir():
        pytest.skip(
            f"{UPSTREAM_DATA} not present: the real upstream stats ship only with CI's shared/"
        )
    return UPSTREAM_DATA


@pytest.fixture
def project_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A throw-away copy of the project (configuration and metadata) as the working directory.

    MLflow's ``sqlite:///mlflow.db`` and the data layers resolve against the working directory, so
    a session run here never touches the developer's own data or registry.
    """
    root = tmp_path / "project"
    root.mkdir()
    shutil.copytree(PROJECT_ROOT / "conf", root / "conf", ignore=shutil.ignore_patterns("local"))
    (root / "conf" / "local").mkdir()
    # MLflow caches one store per URI string, so every copy's relative ``sqlite:///mlflow.db``
    # would share the first copy's database within one pytest process; name the file absolutely.
    mlflow_yml = root / "conf" / "base" / "mlflow.yml"
    mlflow_yml.write_text(
        mlflow_yml.read_text().replace("sqlite:///mlflow.db", f"sqlite:///{root / 'mlflow.db'}")
    )
    shutil.copy(PROJECT_ROOT / "pyproject.toml", root / "pyproject.toml")
    # Kedro wants a source folder; the package itself is imported from the installed project.
    (root / "src").mkdir()
    for layer in sorted(p.name for p in (PROJECT_ROOT / "data").iterdir() if p.is_dir()):
        (root / "data" / layer).mkdir(parents=True)
    monkeypatch.chdir(root)
    return root


def wait_until_serving(url: str, server: subprocess.Popen, log: Path, *, seconds: float) -> None:
    """Poll ``url`` until it answers; fail with the server's log if it dies or takes too long."""
    deadline = time.monotonic() + seconds
    while True:
        assert server.poll() is None, log.read_text()[-3000:]
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            assert time.monotonic() < deadline, f"{url} did not answer within {seconds:.0f} s"
            time.sleep(0.5)


def stop(server: subprocess.Popen) -> None:
    """Terminate a server process, then kill it if it has not stopped within 20 s."""
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=20)
