"""Import a benchmark script as `python benchmarks/<name>.py` runs it: with its folder on the path,
so that its own imports (`_project`, `_timing`) resolve."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

BENCHMARKS_DIR = Path(__file__).resolve().parents[2] / "benchmarks"


def import_benchmark(name: str) -> ModuleType:
    """The module benchmarks/<name>.py."""
    sys.path.insert(0, str(BENCHMARKS_DIR))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(BENCHMARKS_DIR))
