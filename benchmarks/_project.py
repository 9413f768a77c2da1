"""Load what a finished run left in the project, through its own catalog (for quality benches)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def load_run(project: Path, names: Sequence[str], models: Sequence[str]) -> dict[str, Any]:
    """Catalog entries ``names`` and the registered ``<kind>.model`` of each of ``models``."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project)
    with KedroSession.create(project_path=project) as session:
        catalog = session.load_context().catalog
        run = {name: catalog.load(name) for name in names}
        for kind in models:
            run[kind] = catalog.load(f"{kind}.model").module.eval()
    return run
