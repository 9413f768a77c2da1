"""Bring one person's folder into place: generate it, download it, or use a local copy."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from audio2photoreal_pipelines.data.download import download_person
from audio2photoreal_pipelines.data.synthetic import SyntheticConfig, generate_person

logger = logging.getLogger(__name__)

UPSTREAM_URL = (
    "https://github.com/facebookresearch/audio2photoreal/releases/download/v1.0/{person}.zip"
)
TRUTH_SUFFIX = "_synthetic_truth.npz"
_SYNTHETIC_MARKER = ".a2p_synthetic.json"


@dataclass(frozen=True, kw_only=True)
class DatasetParams:
    """Which person to ingest and where it comes from (``params:dataset``)."""

    person: str = "SYN001"
    source: Literal["synthetic", "url", "local"] = "synthetic"
    root: str = "data/01_raw"
    url: str = UPSTREAM_URL
    sha256: str | None = None

    def __post_init__(self) -> None:
        if self.source not in ("synthetic", "url", "local"):
            raise ValueError(
                f"dataset.source must be 'synthetic', 'url' or 'local', got {self.source!r}"
            )


def acquire_person(dataset: DatasetParams, synthetic: SyntheticConfig) -> Path:
    """Return the person's folder in the upstream layout, generating or downloading it if needed."""
    root = Path(dataset.root)
    if dataset.source == "local":
        person_dir = root / dataset.person
        if not person_dir.is_dir():
            raise FileNotFoundError(
                f"{person_dir}: no such folder. With dataset.source=local, dataset.root must hold "
                f"a '{dataset.person}/' folder in the upstream layout."
            )
        return person_dir
    if dataset.source == "url":
        return download_person(dataset.url, root, dataset.person, sha256=dataset.sha256)
    return ensure_synthetic_person(root / dataset.person, synthetic)


def ensure_synthetic_person(person_dir: Path, config: SyntheticConfig) -> Path:
    """Generate the synthetic person unless the same configuration is already complete there."""
    marker = person_dir / _SYNTHETIC_MARKER
    wanted = asdict(config)
    if marker.is_file() and json.loads(marker.read_text()) == wanted:
        logger.info("Synthetic person %s already generated in %s", config.person, person_dir)
        return person_dir
    logger.info("Generating synthetic person %s into %s", config.person, person_dir)
    marker.unlink(missing_ok=True)
    generate_person(person_dir, config)
    # Written last, so an interrupted generation is redone rather than trusted.
    marker.write_text(json.dumps(wanted, indent=2))
    return person_dir


def read_synthetic_truth(
    person_dir: Path, scene_names: list[str]
) -> dict[str, dict[str, np.ndarray]]:
    """The generator's true drivers per scene; empty for a real person, who has none."""
    truth = {}
    for name in scene_names:
        path = Path(person_dir) / f"{name}{TRUTH_SUFFIX}"
        if path.is_file():
            with np.load(path, allow_pickle=False) as npz:
                truth[name] = {key: npz[key] for key in npz.files}
    return truth
