"""kedro-datasets' JSON and text datasets, with local saves that cannot leave a partial file.

Upstream's ``save`` opens the target for writing and writes into it, so a run killed mid-save
leaves a truncated ``metrics.json`` or ``splits.json`` that the next run fails to read. Here a
local save goes through `atomic_write`; other filesystems keep kedro-datasets' own save.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kedro.io.core import get_filepath_str
from kedro_datasets.json import JSONDataset as _JSONDataset
from kedro_datasets.text import TextDataset as _TextDataset

from audio2photoreal_pipelines.atomic import atomic_write


class JSONDataset(_JSONDataset):
    """``json.JSONDataset`` whose local saves replace the file whole or not at all."""

    def save(self, data: Any) -> None:
        if self._protocol != "file":
            return super().save(data)
        text = json.dumps(data, **self._save_args)
        encoding = self._fs_open_args_save.get("encoding") or "utf-8"
        with atomic_write(Path(get_filepath_str(self._get_save_path(), self._protocol))) as out:
            out.write(text.encode(encoding))
        self._invalidate_cache()
        return None


class TextDataset(_TextDataset):
    """``text.TextDataset`` whose local saves replace the file whole or not at all."""

    def save(self, data: str) -> None:
        if self._protocol != "file":
            return super().save(data)
        encoding = self._fs_open_args_save.get("encoding") or "utf-8"
        with atomic_write(Path(get_filepath_str(self._get_save_path(), self._protocol))) as out:
            out.write(data.encode(encoding))
        self._invalidate_cache()
        return None
