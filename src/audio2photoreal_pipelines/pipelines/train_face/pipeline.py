"""``train_face``: the training template under the ``face`` namespace (``training_template``)."""

from kedro.pipeline import Pipeline

from audio2photoreal_pipelines.pipelines.training_template import create_training_pipeline

from .nodes import train_face


def create_pipeline(**kwargs) -> Pipeline:
    """Windows of face motion and audio → denoiser → ``a2p-<person>-face`` in the registry."""
    return create_training_pipeline(namespace="face", train_func=train_face)
