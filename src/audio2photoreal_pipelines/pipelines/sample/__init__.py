"""sample: generated face and body motion for the test chunks or a user's wav."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
