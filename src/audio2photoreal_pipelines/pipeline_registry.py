"""The project's pipelines: each folder under ``pipelines/`` that defines ``create_pipeline``."""

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

# The order in which ``kedro run`` (``__default__``) runs them.
PIPELINE_ORDER = (
    "ingest",
    "train_vq",
    "train_guide",
    "train_face",
    "train_pose",
    "sample",
    "evaluate",
)


def register_pipelines() -> dict[str, Pipeline]:
    """Register every pipeline under its name, and all of them, in order, as ``__default__``."""
    pipelines = find_pipelines(raise_errors=True)
    pipelines["__default__"] = sum(
        (pipelines[name] for name in PIPELINE_ORDER if name in pipelines), Pipeline([])
    )
    return pipelines
