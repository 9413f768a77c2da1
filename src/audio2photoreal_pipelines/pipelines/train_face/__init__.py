"""train_face: the conditional face diffusion model."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
