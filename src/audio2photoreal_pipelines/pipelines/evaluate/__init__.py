"""evaluate: the paper's metrics against baselines, a report, and registry promotion."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
