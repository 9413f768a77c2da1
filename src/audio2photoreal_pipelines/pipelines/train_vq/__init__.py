"""train_vq: the residual VQ-VAE over 1 fps body keyframes."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
