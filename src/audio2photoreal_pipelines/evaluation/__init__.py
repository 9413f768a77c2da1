"""Metrics, baselines, plots and the report for trained models (numpy, scipy, matplotlib)."""
