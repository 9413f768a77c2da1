"""``train_vq``: the training template under the ``vq`` namespace (see ``training_template``)."""

from kedro.pipeline import Pipeline

from audio2photoreal_pipelines.pipelines.training_template import create_training_pipeline

from .nodes import VQ_SPEC


def create_pipeline(**kwargs) -> Pipeline:
    """Windows of body keyframes → VQ-VAE → ``a2p-<person>-vq`` in the registry."""
    return create_training_pipeline(VQ_SPEC)
