"""``notebooks/explore.ipynb`` runs headless through Kedro's Jupyter extension after ``ingest``."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import PROJECT_ROOT, run_session

NOTEBOOK = PROJECT_ROOT / "notebooks" / "explore.ipynb"
CELL_TIMEOUT_S = 120


def _output_text(notebook: nbformat.NotebookNode) -> str:
    """All printed text and plain-text results of the executed notebook."""
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", ""))
            parts.append(output.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def _has_image(notebook: nbformat.NotebookNode) -> bool:
    return any(
        "image/png" in output.get("data", {})
        for cell in notebook.cells
        for output in cell.get("outputs", [])
    )


def test_committed_notebook_has_no_outputs() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)


@pytest.mark.slow
def test_explore_notebook_runs_headless_after_ingest(project_copy: Path) -> None:
    run_session(project_copy, ["ingest"])
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    # The kernel starts in the project copy, where %load_ext kedro.ipython finds the project.
    client = NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=CELL_TIMEOUT_S,
        resources={"metadata": {"path": str(project_copy)}},
    )
    client.execute()  # raises CellExecutionError on the first failing cell

    text = _output_text(notebook)
    splits = json.loads(
        (project_copy / "data" / "03_primary" / "SYN001" / "splits.json").read_text()
    )
    sizes = {name: len(names) for name, names in splits.items()}
    assert f"split sizes: {sizes}" in text
    assert f"project: {project_copy}" in text, "the kernel loaded another project"
    assert _has_image(notebook), "the scene plot was not drawn"
    assert "metrics_table not written yet" in text
    assert "report not written yet" in text
