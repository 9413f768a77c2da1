"""``VqWav2VecDataset``: upstream's frozen vq-wav2vec extractor from a fairseq checkpoint.

Hand-written because fairseq itself (the only other reader) is unmaintained and pins old torch:
the checkpoint is unpickled with ``weights_only=True`` and no fairseq code.
"""

from __future__ import annotations

import argparse
import pickle
import re
from pathlib import Path
from typing import Any

import torch

from audio2photoreal_pipelines.datasets.optional_input import OptionalInputDataset
from audio2photoreal_pipelines.models.audio import VqWav2VecFeatures, build_vq_wav2vec

_MAX_STUBBED_GLOBALS = 64


class _Inert:
    """Stand-in for pickled objects we never read (e.g. fairseq meters): stores and runs nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass


def read_fairseq_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(the 'model' state dict, the model settings) of a fairseq checkpoint.

    ``torch.load(weights_only=True)`` with argparse.Namespace allowed (fairseq's 'args'); any other
    global the file names (e.g. fairseq meters in 'extra_state', which we never read) is mapped to
    an inert stub, one at a time as the restricted unpickler reports it, so no foreign code runs.
    Works for both the zip and the legacy (pre-1.6) torch.save formats.
    """
    path = Path(path)
    allowed: list = [argparse.Namespace]
    for _ in range(_MAX_STUBBED_GLOBALS):
        try:
            with torch.serialization.safe_globals(allowed):
                state = torch.load(path, map_location="cpu", weights_only=True)
            break
        except pickle.UnpicklingError as error:
            match = re.search(r"GLOBAL (\S+) was not an allowed global", str(error))
            if match is None:
                raise ValueError(f"{path}: cannot be loaded with weights_only=True") from None
            allowed.append((_Inert, match.group(1)))
        except (OSError, RuntimeError, EOFError) as error:
            raise ValueError(f"{path}: cannot read the checkpoint ({error})") from None
    else:
        raise ValueError(f"{path}: names more than {_MAX_STUBBED_GLOBALS} unknown pickled classes")
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict):
        raise ValueError(f"{path}: not a fairseq checkpoint (no 'model' state dict)")
    return state["model"], _model_args(state, path)


def _model_args(state: dict, path: Path) -> dict[str, Any]:
    """The model settings of a fairseq checkpoint: 'args' (Namespace) or 'cfg'['model']."""
    if isinstance(state.get("args"), argparse.Namespace):
        return vars(state["args"])
    cfg = state.get("cfg")
    if isinstance(cfg, dict) and isinstance(cfg.get("model"), dict | argparse.Namespace):
        model = cfg["model"]
        return vars(model) if isinstance(model, argparse.Namespace) else dict(model)
    if state.get("args") is None and cfg is None:
        return {}
    raise ValueError(f"{path}: unreadable 'args'/'cfg' in the checkpoint")


class VqWav2VecDataset(OptionalInputDataset):
    """Read-only: the frozen extractor of the fairseq checkpoint at ``filepath``, or None (the
    default, log-mel features) when no checkpoint is given (globals ``vq_wav2vec_checkpoint``)."""

    def read(self, filepath: str) -> VqWav2VecFeatures:
        model_state, args = read_fairseq_checkpoint(filepath)
        return build_vq_wav2vec(model_state, args, source=filepath)
