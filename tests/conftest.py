"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")

PROJECT_ROOT = Path(__file__).resolve().parents[1]
UPSTREAM_DATA = PROJECT_ROOT.parent / "shared" / "upstream-data"

# A small synthetic person: 8 scenes of 21-25 s keep 2 train scenes after the faceless one is
# dropped and 2 + 4 are held out, and every test scene still fits one 600-frame chunk.
TINY_PERSON = {
    "synthetic.num_scenes": 8,
    "synthetic.min_seconds": 21,
    "synthetic.max_seconds": 25,
}


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
    shutil.copy(PROJECT_ROOT / "pyproject.toml", root / "pyproject.toml")
    # Kedro wants a source folder; the package itself is imported from the installed project.
    (root / "src").mkdir()
    for layer in sorted(p.name for p in (PROJECT_ROOT / "data").iterdir() if p.is_dir()):
        (root / "data" / layer).mkdir(parents=True)
    monkeypatch.chdir(root)
    return root
