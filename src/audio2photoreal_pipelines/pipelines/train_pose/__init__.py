"""train_pose: the conditional pose diffusion model."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
