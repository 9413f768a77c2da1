"""train_guide: the transformer from audio to VQ tokens."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
