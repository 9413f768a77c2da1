"""``kedro viz build`` runs headless, and its graph is the registry's pipelines over the catalog."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from audio2photoreal_pipelines.pipeline_registry import PIPELINE_ORDER

BUILD_TIMEOUT_S = 120


def _start_viz_build(project: Path) -> subprocess.Popen:
    """Start ``kedro viz build`` in ``project`` (it writes ``build/``)."""
    return subprocess.Popen(
        [sys.executable, "-m", "kedro", "viz", "build"],
        cwd=project,
        env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _finish_viz_build(build: subprocess.Popen, project: Path) -> Path:
    """Wait for the build; return its ``build/api`` folder."""
    try:
        output, _ = build.communicate(timeout=BUILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        build.kill()
        output, _ = build.communicate()
        pytest.fail(f"kedro viz build took over {BUILD_TIMEOUT_S} s:\n{output}")
    assert build.returncode == 0, f"kedro viz build failed:\n{output}"
    return project / "build" / "api"


def _graph_io(graph: dict) -> dict[str, tuple[set[str], set[str]]]:
    """Each task node's full name -> (input names, output names), read from the graph's edges."""
    tasks = {n["id"]: n["full_name"] for n in graph["nodes"] if n["type"] == "task"}
    datasets = {n["id"]: n["name"] for n in graph["nodes"] if n["type"] in ("data", "parameters")}
    io: dict[str, tuple[set[str], set[str]]] = {name: (set(), set()) for name in tasks.values()}
    # Edges to and from collapsed modular pipelines repeat the task edges; only task edges count.
    for edge in graph["edges"]:
        source, target = edge["source"], edge["target"]
        if source in datasets and target in tasks:
            io[tasks[target]][0].add(datasets[source])
        elif source in tasks and target in datasets:
            io[tasks[source]][1].add(datasets[target])
    return io


def _registry_and_catalog(project: Path):
    """The registered pipelines and the catalog a session in ``project`` would use."""
    from kedro.framework.project import pipelines
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project)
    registry = dict(pipelines)
    with KedroSession.create(project_path=project) as session:
        catalog = session.load_context().catalog
    return registry, catalog


def _qualified_type(dataset) -> str:
    cls = type(dataset)
    return f"{cls.__module__}.{cls.__qualname__}"


@pytest.mark.slow
def test_viz_build_graph_matches_the_registry_and_the_catalog(project_copy: Path) -> None:
    build = _start_viz_build(project_copy)
    try:
        # Loading the registry and the catalog here overlaps with the build's own start-up.
        registry, catalog = _registry_and_catalog(project_copy)
    except BaseException:
        build.kill()
        build.communicate()
        raise
    api = _finish_viz_build(build, project_copy)

    main = json.loads((api / "main").read_text())
    expected = {*PIPELINE_ORDER, "__default__"}
    assert expected <= set(registry), "the registry lacks a pipeline"
    assert {p["id"] for p in main["pipelines"]} == set(registry)
    assert main["selected_pipeline"] == "__default__"
    assert {p.name for p in (api / "pipelines").iterdir()} == set(registry)

    for name, pipeline in registry.items():
        graph = json.loads((api / "pipelines" / name).read_text())
        want = {n.name: (set(n.inputs), set(n.outputs)) for n in pipeline.nodes}
        assert _graph_io(graph) == want, f"viz graph of {name!r} differs from the registry"

    data_nodes = {n["name"]: n["dataset_type"] for n in main["nodes"] if n["type"] == "data"}
    datasets = {d for d in registry["__default__"].datasets() if not d.startswith("params:")}
    assert set(data_nodes) == datasets

    # Viz resolves each dataset through the catalog: the type it shows must be the catalog's.
    declared = {name for name in data_nodes if name in catalog}
    wrong_type = {
        name: (data_nodes[name], _qualified_type(catalog.get(name)))
        for name in declared
        if not _qualified_type(catalog.get(name)).endswith(data_nodes[name])
    }
    assert not wrong_type, f"viz dataset types differ from the catalog: {wrong_type}"

    # Explicit entries and factory patterns count (MemoryDataset entries included); a dataset
    # that only Kedro's runtime fallback would make is an undeclared MemoryDataset.
    undeclared = sorted(set(data_nodes) - declared)
    assert not undeclared, f"datasets missing from conf/base/catalog.yml: {undeclared}"
