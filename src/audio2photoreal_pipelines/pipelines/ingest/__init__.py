"""Ingest: acquire, validate, mask, split, stats, test chunks, audio features."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
