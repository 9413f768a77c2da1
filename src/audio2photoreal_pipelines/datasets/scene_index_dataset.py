"""``SceneIndexDataset``: scenes as a JSON index of their files, re-opened memory-mapped."""

from __future__ import annotations

import json
from pathlib import Path

from audio2photoreal_pipelines.data.scenes import SCENE_FILES, Scene
from audio2photoreal_pipelines.datasets._file_dataset import FileDataset


class SceneIndexDataset(FileDataset):
    """``dict[str, Scene]`` <-> ``{name: {<file>_path: absolute path, num_frames: T}}`` JSON.

    Only the index is written; the scene files stay where they are (a real person is ~1.1 GB)
    and ``load`` memory-maps them again. The scene files must be on the local filesystem.
    """

    def load(self) -> dict[str, Scene]:
        """Re-open every indexed scene; fail if a file changed length since indexing."""
        with self._open_load() as handle:
            index = json.loads(handle.read().decode("utf-8"))
        scenes = {}
        for name, entry in sorted(index.items()):
            scene = Scene.open(name, **{key: entry[key] for key in SCENE_FILES})
            if scene.num_frames != entry["num_frames"]:
                raise ValueError(
                    f"{scene.body_pose_path}: has {scene.num_frames} frames, "
                    f"the scene index says {entry['num_frames']}"
                )
            scenes[name] = scene
        return scenes

    def save(self, data: dict[str, Scene]) -> None:
        """Write the index with absolute paths."""
        index = {
            name: {
                **{key: str(Path(path).resolve()) for key, path in scene.paths.items()},
                "num_frames": scene.num_frames,
            }
            for name, scene in sorted(data.items())
        }
        with self._open_save() as handle:
            handle.write(json.dumps(index, indent=2).encode("utf-8"))
