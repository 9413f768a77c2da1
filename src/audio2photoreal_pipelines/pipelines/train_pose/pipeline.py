"""``train_pose``: the training template under ``pose``, also fed the trained VQ."""

from kedro.pipeline import Pipeline

from audio2photoreal_pipelines.pipelines.training_template import create_training_pipeline

from .nodes import POSE_SPEC


def create_pipeline(**kwargs) -> Pipeline:
    """Windows of pose motion and audio (+ the VQ) → denoiser → ``a2p-<person>-pose``."""
    return create_training_pipeline(POSE_SPEC)
