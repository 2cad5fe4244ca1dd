"""Host <-> device copies that overlap with computation.

A copy from ordinary (pageable) host memory to a GPU makes the host wait until the
GPU has finished everything queued before it, so the GPU then idles while the host
queues the next kernels; a copy back (``.cpu()``) does the same. Per transformer
window that happened about ten times at 720p. Here:

- :class:`Prefetcher` gathers the rows a later step needs from whole-clip host
  arrays on a worker thread, into page-locked staging memory (PyTorch's caching
  host allocator: no per-call page-locking), and queues their copies on a side
  stream, while the GPU works on the current step; :meth:`Prefetcher.take` makes
  the compute stream wait for those copies only.
- :class:`HostReturns` starts a device-to-host copy without waiting for it, and
  hands the result over once the copy has finished.

Without CUDA (or for sources already on the device) both do the plain thing at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import torch

# a request: (source indexable by a list of ints -> tensor, the row indices)
Request = tuple[object, Sequence[int]]


@dataclass
class Ticket:
    """A submitted set of requests; redeem with :meth:`Prefetcher.take`."""

    future: Future | None = None
    immediate: dict[str, Request] = field(default_factory=dict)


def _rows(source, indices: Sequence[int]) -> torch.Tensor:
    """``source[indices]`` as a new tensor (``source``: a tensor or a disk-backed array that returns tensors).

    From a GPU tensor the rows are gathered without the host waiting for the GPU: a run of
    consecutive rows is copied as a slice, other indices travel page-locked (a plain copy of the
    index list would wait for every queued kernel: six waits per transformer window with the clip
    on the GPU).
    """
    if not isinstance(source, torch.Tensor):
        return source[list(indices)]
    rows = list(indices)
    if source.device.type == "cuda":
        if rows and rows == list(range(rows[0], rows[0] + len(rows))):
            return source[rows[0]:rows[0] + len(rows)].clone()
        return source.index_select(0, upload(torch.tensor(rows, dtype=torch.long), source.device))
    return source.index_select(0, torch.as_tensor(rows, dtype=torch.long))


# dtypes numpy can copy (bfloat16 has no numpy twin)
_NUMPY_DTYPES = (torch.float32, torch.float16, torch.uint8, torch.bool, torch.int64, torch.int32, torch.float64)


def _pinned_rows(source, indices: Sequence[int]) -> torch.Tensor:
    """``source[indices]`` gathered into page-locked memory.

    Rows of a host tensor are copied straight into the page-locked block by one
    single-threaded numpy ``take`` (which releases the GIL): once instead of twice (an
    ATen gather, then the pinning copy), and beside the thread that launches the GPU's
    kernels rather than on every core. (An H100 A/B at 720p was within noise.)
    """
    if _numpy_gatherable(source):
        staged = torch.empty((len(indices), *source.shape[1:]), dtype=source.dtype, pin_memory=True)
        return take_rows(source, indices, staged)
    return _rows(source, indices).pin_memory()


def _numpy_gatherable(source) -> bool:
    return isinstance(source, torch.Tensor) and source.device.type == "cpu" and source.dtype in _NUMPY_DTYPES \
        and source.is_contiguous()


def take_rows(source: torch.Tensor, indices: Sequence[int], out: torch.Tensor) -> torch.Tensor:
    """``out[:] = source[indices]`` for contiguous host tensors, one numpy copy (single thread, no GIL held).

    Args:
        source: (N, ...) contiguous CPU tensor of a numpy-representable dtype.
        indices: len(out) row indices in ``0..N-1``.
        out: (len(indices), ...) contiguous CPU tensor of ``source``'s dtype.
    Returns:
        ``out``.
    """
    if not (_numpy_gatherable(source) and out.is_contiguous() and out.dtype == source.dtype):
        raise ValueError("take_rows needs contiguous host tensors of one numpy-representable dtype")
    rows = np.asarray(indices, dtype=np.int64)
    if rows.size and (rows.min() < 0 or rows.max() >= source.shape[0]):
        raise IndexError(f"row indices must lie in 0..{source.shape[0] - 1}")
    # mode="clip": numpy buffers ``out`` in the default mode; the indices are checked above
    np.take(source.numpy(), rows, axis=0, out=out.numpy(), mode="clip")
    return out


def upload(host: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``host.to(device)`` without making the host wait for the GPU.

    A copy from pageable memory waits until the GPU has finished everything queued before it
    (the GPU then idles while the host queues the next kernels); staged through page-locked
    memory (PyTorch's caching host allocator, which keeps the block until the copy is done) it
    is queued like a kernel. Tensors already on ``device``, and every copy off a GPU, go as ``to``.
    """
    if host.device.type != "cpu" or torch.device(device).type != "cuda":
        return host.to(device)
    return host.pin_memory().to(device, non_blocking=True)


def upload_into(dst: torch.Tensor, host: torch.Tensor) -> None:
    """``dst[...] = host`` for a tensor ``dst`` on a GPU or the host, queued without waiting
    (see :func:`upload`)."""
    if dst.device.type == "cuda" and host.device.type == "cpu":
        dst.copy_(host.pin_memory(), non_blocking=True)
    else:
        dst.copy_(host)


class Prefetcher:
    """Copies rows of host arrays to ``device`` one step ahead, on a worker thread and a side stream.

    Args:
        device: where the rows go.
        enabled: False (or a non-CUDA device) gathers and copies at :meth:`take` time instead.
    """

    def __init__(self, device: torch.device, enabled: bool = True, numpy_gather: bool = True) -> None:
        self.device = device
        self.numpy_gather = numpy_gather  # False: ATen's gather (multi-threaded) then a pinning copy (A/B only)
        self.async_copies = enabled and device.type == "cuda"
        self.pool = ThreadPoolExecutor(max_workers=1) if self.async_copies else None
        self.stream = torch.cuda.Stream(device) if self.async_copies else None

    def submit(self, requests: dict[str, Request]) -> Ticket:
        """Start fetching ``{name: (source, row indices)}``; sources on the device are gathered at take time."""
        ticket = Ticket()
        host = {}
        for name, (source, indices) in requests.items():
            on_device = isinstance(source, torch.Tensor) and source.device.type != "cpu"
            if not self.async_copies or on_device or not len(indices):
                ticket.immediate[name] = (source, indices)
            else:
                host[name] = (source, indices)
        if host:
            ticket.future = self.pool.submit(self._fetch, host)
        return ticket

    def _fetch(self, requests: dict[str, Request]) -> dict[str, tuple[torch.Tensor, torch.cuda.Event]]:
        out = {}
        with torch.cuda.stream(self.stream):
            for name, (source, indices) in requests.items():
                # a cached page-locked block: the copy below need not wait
                staged = _pinned_rows(source, indices) if self.numpy_gather else _rows(source, indices).pin_memory()
                on_device = staged.to(self.device, non_blocking=True)
                done = torch.cuda.Event()
                done.record(self.stream)
                out[name] = (on_device, done)
        return out

    def take(self, ticket: Ticket) -> dict[str, torch.Tensor]:
        """The requested rows on the device, ready for the current stream ({name: (len(indices), ...)})."""
        out = {name: _rows(source, indices).to(self.device) for name, (source, indices) in ticket.immediate.items()}
        if ticket.future is not None:
            current = torch.cuda.current_stream(self.device)
            for name, (tensor, done) in ticket.future.result().items():
                current.wait_event(done)
                tensor.record_stream(current)  # allocated on the side stream, used on this one
                out[name] = tensor
        return out

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)
            self.pool = None


class HostReturns:
    """Device tensors copied to the host without stalling the device; ``deliver`` hands them over.

    Args:
        sink: called as ``sink(key, tensor)`` with the host tensor of each finished copy
            (its memory is reused afterwards: copy what must outlive the call).
    """

    def __init__(self, sink: Callable[[object, torch.Tensor], None]) -> None:
        self.sink = sink
        self.pending: list[tuple[object, torch.Tensor, torch.cuda.Event | None]] = []

    def put(self, key, tensor: torch.Tensor) -> None:
        """Start copying ``tensor`` to the host (at once, synchronously, for a CPU tensor)."""
        if tensor.device.type != "cuda":
            self.sink(key, tensor)
            return
        host = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
        host.copy_(tensor, non_blocking=True)
        done = torch.cuda.Event()
        done.record(torch.cuda.current_stream(tensor.device))
        self.pending.append((key, host, done))

    def deliver(self, wait: bool = False) -> None:
        """Hand over the finished copies (all of them, waiting, with ``wait``)."""
        still = []
        for key, host, done in self.pending:
            if wait or done.query():
                done.synchronize()
                self.sink(key, host)
            else:
                still.append((key, host, done))
        self.pending = still
