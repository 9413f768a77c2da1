"""Shared fsspec plumbing for this project's single-file, versionable Kedro datasets."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from copy import deepcopy
from pathlib import Path, PurePosixPath
from typing import IO, Any

import fsspec
from kedro.io.core import (
    AbstractVersionedDataset,
    DatasetError,
    Version,
    get_filepath_str,
    get_protocol_and_path,
)

from audio2photoreal_pipelines.atomic import atomic_write


class FileDataset(AbstractVersionedDataset[Any, Any]):
    """Base: one file on any fsspec filesystem, versionable; subclasses add ``load``/``save``."""

    DEFAULT_LOAD_ARGS: dict[str, Any] = {}
    DEFAULT_SAVE_ARGS: dict[str, Any] = {}

    def __init__(
        self,
        *,
        filepath: str | os.PathLike,
        load_args: dict[str, Any] | None = None,
        save_args: dict[str, Any] | None = None,
        version: Version | None = None,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Point at ``filepath`` (local or ``s3://``-style); args are merged over the defaults."""
        fs_args = deepcopy(fs_args) or {}
        protocol, path = get_protocol_and_path(filepath, version)
        if protocol == "file":
            fs_args.setdefault("auto_mkdir", True)
        self._protocol = protocol
        self._fs = fsspec.filesystem(protocol, **(deepcopy(credentials) or {}), **fs_args)
        self._load_args = {**self.DEFAULT_LOAD_ARGS, **(load_args or {})}
        self._save_args = {**self.DEFAULT_SAVE_ARGS, **(save_args or {})}
        self.metadata = metadata
        super().__init__(
            filepath=PurePosixPath(path),
            version=version,
            exists_function=self._fs.exists,
            glob_function=self._fs.glob,
        )

    def _describe(self) -> dict[str, Any]:
        return {
            "filepath": self._filepath,
            "protocol": self._protocol,
            "load_args": self._load_args,
            "save_args": self._save_args,
            "version": self._version,
        }

    @property
    def _is_local(self) -> bool:
        return self._protocol == "file"

    def _load_path_str(self) -> str:
        return get_filepath_str(self._get_load_path(), self._protocol)

    def _save_path_str(self) -> str:
        return get_filepath_str(self._get_save_path(), self._protocol)

    @contextmanager
    def _open_load(self) -> Iterator[IO[bytes]]:
        with self._fs.open(self._load_path_str(), mode="rb") as handle:
            yield handle

    @contextmanager
    def _open_save(self) -> Iterator[IO[bytes]]:
        """A handle to write the file whole: on the local disk, a fsynced temporary renamed into
        place, so a crash or kill mid-write leaves the previous file, never a partial one."""
        path = self._save_path_str()
        if self._protocol != "file":
            with self._fs.open(path, mode="wb") as handle:
                yield handle
            self._invalidate_cache()
            return
        with atomic_write(Path(path)) as handle:
            yield handle
        self._invalidate_cache()

    def _exists(self) -> bool:
        try:
            load_path = self._load_path_str()
        except DatasetError:
            return False
        return self._fs.exists(load_path)

    def _release(self) -> None:
        super()._release()
        self._invalidate_cache()

    def _invalidate_cache(self) -> None:
        self._fs.invalidate_cache(get_filepath_str(self._filepath, self._protocol))
