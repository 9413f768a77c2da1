"""``UpstreamResultsDataset``: upstream's ``results.npy``, a dict saved with ``np.save``."""

from __future__ import annotations

import pickle
from typing import IO

import numpy as np

from audio2photoreal_pipelines.datasets._file_dataset import FileDataset

RESULT_KEYS = ("motions", "audio", "gt", "lengths", "keyframes")
# What a dict of numeric arrays pickles to: _reconstruct with protocol 4 (np.save's, upstream's),
# _frombuffer with protocol 5 (ours). numpy 1.x files name numpy.core.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


_HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")
        return super().find_class(module, name)


def _read_pickled_npy(handle: IO[bytes], source: str) -> object:
    """The object in a ``.npy`` holding one pickled 0-d object array, unpickled safely."""
    try:
        read_header = _HEADER_READERS.get(np.lib.format.read_magic(handle))
        if read_header is None:
            raise ValueError("unsupported .npy format version")
        _, _, dtype = read_header(handle)
        if dtype != np.dtype(object):
            raise ValueError(f"dtype {dtype}, not a pickled dict")
        array = _ArrayUnpickler(handle).load()
        if not isinstance(array, np.ndarray) or array.shape != ():
            raise ValueError("not a single pickled object")
        return array.item()
    except (ValueError, EOFError, pickle.UnpicklingError) as err:
        raise ValueError(f"{source}: not a readable results.npy ({err})") from None


class UpstreamResultsDataset(FileDataset):
    """Generated motion in the layout upstream's renderer reads (``np.load(...).item()``).

    Upstream pickles a dict into a 0-d object array. ``np.load(allow_pickle=True)`` would run
    whatever a file pickles, so loading here unpickles with an allow-list of numpy's array types
    only, then checks for exactly upstream's keys of numeric arrays.
    """

    def load(self) -> dict[str, np.ndarray]:
        """Read the dict back, refusing anything but upstream's keys of numeric arrays."""
        with self._open_load() as handle:
            data = _read_pickled_npy(handle, self._load_path_str())
        if not isinstance(data, dict) or set(data) != set(RESULT_KEYS):
            raise ValueError(f"{self._load_path_str()}: not a results.npy with keys {RESULT_KEYS}")
        if not all(isinstance(v, np.ndarray) and v.dtype.kind in "fiu" for v in data.values()):
            raise ValueError(f"{self._load_path_str()}: results.npy values must be numeric arrays")
        return data

    def save(self, data: dict[str, np.ndarray]) -> None:
        """Write the dict as upstream's ``np.save`` does, but with pickle protocol 5.

        ``np.save`` pickles with protocol 4, which copies each array into a bytes object first:
        the default run's 65 tiled clips of audio (500 MB) made its peak memory. Protocol 5
        writes a contiguous array's buffer as it is, and ``np.load(...).item()`` reads it alike.
        """
        missing = set(RESULT_KEYS) - set(data)
        if missing:
            raise ValueError(f"results.npy needs keys {sorted(missing)}")
        holder = np.empty((), dtype=object)
        holder[()] = {key: np.ascontiguousarray(data[key]) for key in RESULT_KEYS}
        with self._open_save() as handle:
            header = np.lib.format.header_data_from_array_1_0(holder)
            np.lib.format.write_array_header_1_0(handle, header)
            pickle.dump(holder, handle, protocol=5)
