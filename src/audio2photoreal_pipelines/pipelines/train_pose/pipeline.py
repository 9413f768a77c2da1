"""``train_pose``: the training template under the ``pose`` namespace (``training_template``)."""

from kedro.pipeline import Pipeline

from audio2photoreal_pipelines.pipelines.training_template import create_training_pipeline

from .nodes import train_pose


def create_pipeline(**kwargs) -> Pipeline:
    """Windows of pose motion and audio → denoiser → ``a2p-<person>-pose`` in the registry."""
    return create_training_pipeline(namespace="pose", train_func=train_pose)
