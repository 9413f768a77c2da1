"""One person's scenes in the upstream layout: discovery, memory-mapped access, validation.

Layout (upstream ``dataset/<ID>/``)::

    sceneXX_audio.wav                # 48 kHz, 2 ch (0 = person, 1 = partner), 1600 * T samples
    sceneXX_body_pose.npy            # (T, 104)
    sceneXX_face_expression.npy      # (T, 256)
    sceneXX_missing_face_frames.npy  # (K,) frame indices whose face code is missing

Motion arrays stay on disk (``np.load(mmap_mode="r")``) so a 1.1 GB person is never read whole.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from audio2photoreal_pipelines.units import BODY_DIM, FACE_DIM, SAMPLE_RATE, SAMPLES_PER_FRAME

NUM_CHANNELS = 2

SCENE_FILES = {
    "audio_path": "_audio.wav",
    "body_pose_path": "_body_pose.npy",
    "face_expression_path": "_face_expression.npy",
    "missing_face_frames_path": "_missing_face_frames.npy",
}
_SCENE_RE = re.compile(r"^(scene\d+)_")
_FINITE_CHUNK_ROWS = 65_536


class SceneValidationError(ValueError):
    """A scene file is unreadable or inconsistent; the message starts with the file name."""


def _fail(path: Path, problem: str) -> SceneValidationError:
    return SceneValidationError(f"{Path(path).name}: {problem}")


def _open_npy(path: Path, *, mmap: bool) -> np.ndarray:
    """Open a ``.npy`` file without pickle; memory-mapped when ``mmap``."""
    try:
        with open(path, "rb") as handle:
            np.lib.format.read_magic(handle)
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise _fail(path, f"unreadable .npy file ({err})") from None


@dataclass(frozen=True, eq=False)
class Scene:
    """One scene: file paths plus read-only memory-mapped motion arrays."""

    name: str
    audio_path: Path
    body_pose_path: Path
    face_expression_path: Path
    missing_face_frames_path: Path
    body_pose: np.ndarray  # (T, 104), memory-mapped
    face_expression: np.ndarray  # (T, 256), memory-mapped
    missing_face_frames: np.ndarray  # (K,) frame indices

    @classmethod
    def open(
        cls,
        name: str,
        *,
        audio_path: str | Path,
        body_pose_path: str | Path,
        face_expression_path: str | Path,
        missing_face_frames_path: str | Path,
    ) -> Scene:
        """Open a scene from its four files (motion memory-mapped, nothing validated yet)."""
        missing_path = Path(missing_face_frames_path)
        return cls(
            name=name,
            audio_path=Path(audio_path),
            body_pose_path=Path(body_pose_path),
            face_expression_path=Path(face_expression_path),
            missing_face_frames_path=missing_path,
            body_pose=_open_npy(Path(body_pose_path), mmap=True),
            face_expression=_open_npy(Path(face_expression_path), mmap=True),
            missing_face_frames=np.asarray(_open_npy(missing_path, mmap=False)),
        )

    @property
    def paths(self) -> dict[str, Path]:
        """The four file paths keyed like ``SCENE_FILES``."""
        return {key: getattr(self, key) for key in SCENE_FILES}

    @property
    def num_frames(self) -> int:
        """T, the number of motion frames (from the body pose file)."""
        return int(self.body_pose.shape[0]) if self.body_pose.ndim else 0

    def read_audio(self, start_frame: int, num_frames: int) -> np.ndarray:
        """Audio of frames [start_frame, start_frame + num_frames): (num_frames * 1600, 2)."""
        if start_frame < 0 or num_frames < 0 or start_frame + num_frames > self.num_frames:
            raise ValueError(
                f"{self.audio_path.name}: frames [{start_frame}, {start_frame + num_frames}) "
                f"outside [0, {self.num_frames})"
            )
        start = start_frame * SAMPLES_PER_FRAME
        stop = start + num_frames * SAMPLES_PER_FRAME
        audio, _ = sf.read(self.audio_path, start=start, stop=stop, dtype="float32", always_2d=True)
        if audio.shape[0] != stop - start:
            raise _fail(self.audio_path, f"expected {stop - start} samples, read {audio.shape[0]}")
        return audio

    # Sharing is safe (frozen, read-only maps): Kedro's MemoryDataset deep-copies node outputs,
    # which would otherwise pull every memory-mapped array into RAM.
    def __copy__(self) -> Scene:
        return self

    def __deepcopy__(self, memo: dict) -> Scene:
        return self

    def __reduce__(self):
        # Pickle as paths (e.g. for ParallelRunner workers) and re-map on the other side.
        return (_reopen, (self.name, *(str(p) for p in self.paths.values())))


def _reopen(name: str, audio: str, body: str, face: str, missing: str) -> Scene:
    return Scene.open(
        name,
        audio_path=audio,
        body_pose_path=body,
        face_expression_path=face,
        missing_face_frames_path=missing,
    )


def discover_scenes(person_dir: str | Path) -> dict[str, Scene]:
    """Find every ``sceneXX_*`` group in ``person_dir``; each must have all four files."""
    person_dir = Path(person_dir)
    if not person_dir.is_dir():
        raise FileNotFoundError(f"{person_dir}: scene folder does not exist")
    names = sorted(
        {m.group(1) for f in person_dir.iterdir() if f.is_file() and (m := _SCENE_RE.match(f.name))}
    )
    if not names:
        raise FileNotFoundError(f"{person_dir}: no sceneXX_* files found")
    scenes = {}
    for name in names:
        paths = {key: person_dir / f"{name}{suffix}" for key, suffix in SCENE_FILES.items()}
        missing = [p.name for p in paths.values() if not p.is_file()]
        if missing:
            raise SceneValidationError(
                f"{name}: missing file(s) {', '.join(missing)} in {person_dir}"
            )
        scenes[name] = Scene.open(name, **paths)
    return scenes


def _check_shape(path: Path, array: np.ndarray, dim: int) -> None:
    if array.ndim != 2 or array.shape[1] != dim:
        raise _fail(path, f"expected shape (T, {dim}), got {tuple(array.shape)}")
    if not np.issubdtype(array.dtype, np.floating):
        raise _fail(path, f"expected a floating dtype, got {array.dtype}")


def _check_finite(path: Path, array: np.ndarray) -> None:
    # Chunked so a multi-GB memmap is checked without being loaded whole.
    for start in range(0, array.shape[0], _FINITE_CHUNK_ROWS):
        finite = np.isfinite(array[start : start + _FINITE_CHUNK_ROWS])
        if not finite.all():
            frame = start + int(np.argwhere(~finite)[0, 0])
            raise _fail(path, f"non-finite value at frame {frame}")


def _check_audio(path: Path, num_frames: int) -> None:
    try:
        info = sf.info(path)
    except (sf.SoundFileError, RuntimeError) as err:
        raise _fail(path, f"unreadable audio file ({err})") from None
    if info.samplerate != SAMPLE_RATE:
        raise _fail(path, f"expected {SAMPLE_RATE} Hz, got {info.samplerate} Hz")
    if info.channels != NUM_CHANNELS:
        raise _fail(path, f"expected {NUM_CHANNELS} channels, got {info.channels}")
    expected = SAMPLES_PER_FRAME * num_frames
    if info.frames != expected:
        raise _fail(
            path,
            f"expected {expected} samples ({SAMPLES_PER_FRAME} * {num_frames} frames), "
            f"got {info.frames}",
        )


def validate_scene(scene: Scene) -> None:
    """Raise ``SceneValidationError`` naming the first bad file; pass if the scene is sound."""
    _check_shape(scene.body_pose_path, scene.body_pose, BODY_DIM)
    _check_shape(scene.face_expression_path, scene.face_expression, FACE_DIM)
    num_frames = scene.num_frames
    if num_frames == 0:
        raise _fail(scene.body_pose_path, "has no frames")
    if scene.face_expression.shape[0] != num_frames:
        raise _fail(
            scene.face_expression_path,
            f"has {scene.face_expression.shape[0]} frames but "
            f"{scene.body_pose_path.name} has {num_frames}",
        )
    _check_audio(scene.audio_path, num_frames)
    missing = scene.missing_face_frames
    if missing.ndim != 1:
        raise _fail(scene.missing_face_frames_path, f"expected shape (K,), got {missing.shape}")
    if missing.size and not np.issubdtype(missing.dtype, np.integer):
        raise _fail(
            scene.missing_face_frames_path, f"expected integer indices, got {missing.dtype}"
        )
    if missing.size and (missing.min() < 0 or missing.max() >= num_frames):
        raise _fail(
            scene.missing_face_frames_path,
            f"indices must lie in [0, {num_frames}), got range [{missing.min()}, {missing.max()}]",
        )
    _check_finite(scene.body_pose_path, scene.body_pose)
    _check_finite(scene.face_expression_path, scene.face_expression)


def face_valid_mask(scene: Scene) -> np.ndarray:
    """(T,) bool, False at the scene's missing face frames."""
    mask = np.ones(scene.num_frames, dtype=bool)
    mask[scene.missing_face_frames.astype(np.int64)] = False
    return mask


def check_person(scenes: Mapping[str, Scene], person: str) -> None:
    """Raise unless every scene's files lie in a folder named `person` (``<root>/<person>/``).

    Catches one person's processed data reaching a run for another (e.g. copied folders).
    """
    for name, scene in sorted(scenes.items()):
        owner = scene.body_pose_path.parent.name
        if owner != person:
            raise ValueError(
                f"{scene.body_pose_path}: scene {name!r} belongs to person {owner!r}, but this "
                f"run is for dataset.person={person!r}; run `kedro run --pipelines ingest "
                f"--params dataset.person={person}` first"
            )
