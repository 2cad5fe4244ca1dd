"""Disk-backed frame arrays, so a long clip's intermediates do not live in RAM.

A :class:`DiskArray` is a stack of equally shaped frames stored back to back in
one raw file of a :class:`Scratch` directory. Frames are read and written with
positional I/O (``os.pread``/``os.pwrite``), never memory-mapped: what is read
is a private copy, and the file's pages belong to the OS page cache, not to the
process's resident memory. Reads and writes of different frames may run on
several threads at once.

Indexing follows numpy for the first axis (an int, a slice with step 1, or a
list/array of ints) and returns ``np.ndarray`` copies; assignment takes an int or a
contiguous slice. ``np.asarray(disk_array)`` materialises the whole stack.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

_CHUNK_BYTES = 64 * 2**20  # reads of whole-array reductions (any/all) go this many bytes at a time


class DiskArray:
    """A (N, *frame_shape) array of ``dtype`` in a raw file.

    Args:
        path: the file (created, or truncated, at this size; zero-filled).
        length: N.
        frame_shape: shape of one frame.
        dtype: numpy dtype of the elements.
    """

    def __init__(self, path: Path, length: int, frame_shape: Sequence[int], dtype) -> None:
        self.path = Path(path)
        self.dtype = np.dtype(dtype)
        self.frame_shape = tuple(int(s) for s in frame_shape)
        self.length = int(length)
        self.frame_bytes = int(np.prod(self.frame_shape, dtype=np.int64)) * self.dtype.itemsize
        self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0),
                                       0o600)
        os.ftruncate(self._fd, self.length * self.frame_bytes)

    # -- numpy-like surface ------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return (self.length, *self.frame_shape)

    @property
    def ndim(self) -> int:
        return 1 + len(self.frame_shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def __len__(self) -> int:
        return self.length

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self[0:self.length]
        return out if dtype is None else out.astype(dtype, copy=False)

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(self.length):
            yield self[i]

    def __getitem__(self, index) -> np.ndarray:
        if isinstance(index, (int, np.integer)):
            return self._read(self._check(int(index)), 1)[0]
        if isinstance(index, slice):
            start, stop = self._range(index)
            return self._read(start, stop - start)
        indices = [self._check(int(i)) for i in np.asarray(index).reshape(-1)]
        out = np.empty((len(indices), *self.frame_shape), self.dtype)
        for k, i in enumerate(indices):
            out[k] = self._read(i, 1)[0]
        return out

    def __setitem__(self, index, value) -> None:
        if isinstance(index, (int, np.integer)):
            start, count = self._check(int(index)), 1
        elif isinstance(index, slice):
            start, stop = self._range(index)
            count = stop - start
        else:
            raise TypeError(f"DiskArray assignment takes an int or a slice, not {type(index).__name__}")
        data = np.ascontiguousarray(np.broadcast_to(np.asarray(value, dtype=self.dtype),
                                                    (count, *self.frame_shape)))
        self._write(start, data)

    def any(self) -> bool:
        """True when any element is non-zero (read in chunks)."""
        return any(bool(block.any()) for block in self._blocks())

    def all(self) -> bool:
        """True when every element is non-zero (read in chunks)."""
        return all(bool(block.all()) for block in self._blocks())

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    # -- internals ----------------------------------------------------------------------
    def _check(self, i: int) -> int:
        j = i + self.length if i < 0 else i
        if not 0 <= j < self.length:
            raise IndexError(f"index {i} out of range for {self.length} frames")
        return j

    def _range(self, index: slice) -> tuple[int, int]:
        start, stop, step = index.indices(self.length)
        if step != 1:
            raise IndexError("DiskArray slices take step 1")
        return start, max(start, stop)

    def _blocks(self) -> Iterator[np.ndarray]:
        per = max(1, _CHUNK_BYTES // max(1, self.frame_bytes))
        for s in range(0, self.length, per):
            yield self[s:s + per]

    def _read(self, start: int, count: int) -> np.ndarray:
        if self._fd is None:
            raise ValueError(f"{self.path} is closed")
        out = np.empty((count, *self.frame_shape), self.dtype)
        view = memoryview(out.reshape(-1).view(np.uint8))
        offset, done = start * self.frame_bytes, 0
        while done < len(view):
            n = os.preadv(self._fd, [view[done:]], offset + done) if hasattr(os, "preadv") else \
                _pread_into(self._fd, view[done:], offset + done)
            if n <= 0:
                raise OSError(f"short read from {self.path}")
            done += n
        return out

    def _write(self, start: int, data: np.ndarray) -> None:
        if self._fd is None:
            raise ValueError(f"{self.path} is closed")
        view = memoryview(data.reshape(-1).view(np.uint8))
        offset, done = start * self.frame_bytes, 0
        while done < len(view):
            n = os.pwrite(self._fd, view[done:], offset + done)
            if n <= 0:
                raise OSError(f"short write to {self.path}")
            done += n


def _pread_into(fd: int, view: memoryview, offset: int) -> int:
    data = os.pread(fd, len(view), offset)
    view[:len(data)] = data
    return len(data)


class Scratch:
    """A temporary directory of :class:`DiskArray` files, removed by :meth:`close` (or ``with``).

    Args:
        parent: where to create it (None: the system's temporary directory).
    """

    def __init__(self, parent: str | Path | None = None) -> None:
        if parent is not None:
            Path(parent).mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(prefix="propainter-wire-", dir=parent))
        self.arrays: list[DiskArray] = []

    def array(self, name: str, length: int, frame_shape: Sequence[int], dtype) -> DiskArray:
        """A new zero-filled (length, *frame_shape) array named ``name`` (unique within this scratch)."""
        arr = DiskArray(self.path / f"{name}-{len(self.arrays)}.raw", length, frame_shape, dtype)
        self.arrays.append(arr)
        return arr

    def close(self) -> None:
        for arr in self.arrays:
            arr.close()
        self.arrays.clear()
        shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self) -> Scratch:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
