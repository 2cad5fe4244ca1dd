"""Frames decoded ahead of their use, readable as they arrive.

A clip's frames decode on a thread pool (PNG and OpenCV codecs release the GIL) into
one preallocated ``(T, H, W, 3)`` array, in order. The run does not wait for the whole
clip: indexing waits only for the frames it touches, so the first network stage starts
on the first frames while later ones still decode.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np


class FrameStream:
    """``length`` frames of ``frame_shape`` and ``dtype``, decoded by ``read(index)`` on ``workers`` threads.

    Reads like a (T, H, W, 3) array: ``shape``, ``dtype``, ``len()``, ``stream[i]`` and
    ``stream[a:b]`` (both wait for those frames, then return views of the decoded
    array), ``np.asarray(stream)`` (waits for all). A frame that failed to decode raises
    its error (an ``InputError`` naming the file) where it is first read.

    Args:
        read: ``read(index)`` -> (H, W, 3) frame of ``dtype``.
        length: number of frames.
        frame_shape: (H, W, 3).
        dtype: sample type of every frame.
        workers: decoding threads.
    """

    def __init__(self, read: Callable[[int], np.ndarray], length: int, frame_shape: tuple[int, ...],
                 dtype: np.dtype, workers: int) -> None:
        self._read = read
        self._array = np.empty((length, *frame_shape), dtype=dtype)
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="decode")
        # the queue is first in, first out: frames finish roughly in order
        self._futures: list[Future] = [self._pool.submit(self._decode, i) for i in range(length)]
        self._pool.shutdown(wait=False)  # the threads leave once the queue is empty

    def _decode(self, index: int) -> None:
        self._array[index] = self._read(index)

    @property
    def shape(self) -> tuple[int, ...]:
        return self._array.shape

    @property
    def dtype(self) -> np.dtype:
        return self._array.dtype

    @property
    def ndim(self) -> int:
        return self._array.ndim

    def __len__(self) -> int:
        return len(self._array)

    def wait(self, end: int | None = None) -> None:
        """Wait for frames ``0 .. end-1`` (all by default); raise the first failure among them."""
        for future in self._futures[:end]:
            future.result()

    def __getitem__(self, index):
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step == 1:
                for future in self._futures[start:stop]:
                    future.result()
            else:
                self.wait()
        elif isinstance(index, (int, np.integer)):
            self._futures[range(len(self))[index]].result()  # IndexError past the end, like an array
        else:
            self.wait()
        return self._array[index]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        self.wait()
        if dtype is not None and np.dtype(dtype) != self.dtype:
            return self._array.astype(dtype)
        return self._array.copy() if copy else self._array

    def close(self) -> None:
        """Drop the frames not started yet (after a failure elsewhere); running decodes finish."""
        for future in self._futures:
            future.cancel()
