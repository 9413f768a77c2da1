"""``train_guide``: the training template under ``guide``, also fed the trained VQ."""

from kedro.pipeline import Pipeline

from audio2photoreal_pipelines.pipelines.training_template import create_training_pipeline

from .nodes import GUIDE_SPEC


def create_pipeline(**kwargs) -> Pipeline:
    """Windows of audio and keyframes + the VQ → guide → ``a2p-<person>-guide`` in the registry."""
    return create_training_pipeline(GUIDE_SPEC)
