"""``train_face``: the training template under the ``face`` namespace (``training_template``)."""

from kedro.pipeline import Pipeline

from audio2photoreal_pipelines.pipelines.training_template import create_training_pipeline

from .nodes import FACE_SPEC


def create_pipeline(**kwargs) -> Pipeline:
    """Windows of face motion and audio → denoiser → ``a2p-<person>-face`` in the registry."""
    return create_training_pipeline(FACE_SPEC)
