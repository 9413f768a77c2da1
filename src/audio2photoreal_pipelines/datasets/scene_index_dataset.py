"""``SceneIndexDataset``: scenes as a JSON index of their files, re-opened memory-mapped."""

from __future__ import annotations

import json
import os
from pathlib import Path

from audio2photoreal_pipelines.data.scenes import SCENE_FILES, Scene
from audio2photoreal_pipelines.datasets._file_dataset import FileDataset

# A scene file at most this many folders above the index is part of the same project
# (data/<layer>/<person>/index.json: three levels up is the project root).
_PROJECT_LEVELS = 3


class SceneIndexDataset(FileDataset):
    """``dict[str, Scene]`` <-> ``{name: {<file>_path: path, num_frames: T}}`` JSON.

    Only the index is written; the scene files stay where they are (a real person is ~1.1 GB)
    and ``load`` memory-maps them again. The scene files must be on the local filesystem.
    Files inside the project are indexed relative to the index's folder, so a moved or cloned
    project still finds them; files elsewhere (a local ``dataset.root``) keep absolute paths.
    """

    def load(self) -> dict[str, Scene]:
        """Re-open every indexed scene; fail if a file changed length since indexing."""
        with self._open_load() as handle:
            index = json.loads(handle.read().decode("utf-8"))
        scenes = {}
        for name, entry in sorted(index.items()):
            scene = Scene.open(name, **{key: self._resolve(entry[key]) for key in SCENE_FILES})
            if scene.num_frames != entry["num_frames"]:
                raise ValueError(
                    f"{scene.body_pose_path}: has {scene.num_frames} frames, "
                    f"the scene index says {entry['num_frames']}"
                )
            scenes[name] = scene
        return scenes

    def save(self, data: dict[str, Scene]) -> None:
        """Write the index: paths relative to it inside the project, absolute outside."""
        index = {
            name: {
                **{key: self._relative(path) for key, path in scene.paths.items()},
                "num_frames": scene.num_frames,
            }
            for name, scene in sorted(data.items())
        }
        with self._open_save() as handle:
            handle.write(json.dumps(index, indent=2).encode("utf-8"))

    def _index_folder(self) -> Path:
        # The unversioned location: a versioned index lives two folders deeper.
        return Path(self._filepath).parent.resolve()

    def _relative(self, path: str | os.PathLike) -> str:
        absolute = Path(path).resolve()
        relative = Path(os.path.relpath(absolute, self._index_folder()))
        if relative.parts.count("..") > _PROJECT_LEVELS:
            return absolute.as_posix()
        return relative.as_posix()

    def _resolve(self, stored: str) -> Path:
        path = Path(stored)
        return path if path.is_absolute() else Path(os.path.normpath(self._index_folder() / path))
