"""audio2photoreal-pipelines."""
