"""Where one clip's whole-length arrays live, and how stage results and frames get there.

A :class:`ClipStore` is made per clip (see ``ProPainterEngine.run``) and handed to each
stage: whole-clip tensors live on the device (a short clip), in host memory, or in a
disk scratch (:class:`DiskTensor`), and only the chunk a stage is working on goes to
the device. Nothing here outlives the clip.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import torch

from ...io.scratch import DiskArray, Scratch
from ...runtime.transfer import HostReturns, upload_into

log = logging.getLogger("propainter_wire")

INPUT_CHUNK = 16  # frames converted (or scanned) at once when filling or reading the whole-clip arrays
_NUMPY_DTYPES = {torch.uint8: np.uint8, torch.bool: np.bool_, torch.float16: np.float16, torch.float32: np.float32}


def clip_bytes(shape: tuple[int, ...]) -> int:
    """Bytes of the whole-clip tensors of a (T, H, W, 3) clip: uint8 frames, bool masks,
    4 float32 flows, float32 updated frames and masks."""
    t, h, w, _ = shape
    per_pixel = 3 + 1 + 1 + 4 * (4 * 2 + 3 + 1)
    return int(t * h * w * per_pixel)


@dataclass(frozen=True)
class ClipStore:
    """One clip's storage choice.

    Attributes:
        device: where the networks compute.
        place: where whole-clip tensors live (``device`` or the host) when ``scratch`` is None.
        scratch: a scratch directory: whole-clip arrays on disk instead (host memory flat with
            clip length).
    """

    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    place: torch.device = field(default_factory=lambda: torch.device("cpu"))
    scratch: Scratch | None = None

    @classmethod
    def for_clip(cls, device: torch.device, shape: tuple[int, ...], resident_bytes: int,
                 scratch: Scratch | None = None) -> ClipStore:
        """The store of a (T, H, W, 3) clip: on the device when its tensors fit ``resident_bytes``
        there (GPU), else on the host; on disk when ``scratch`` is given."""
        place = device
        if device.type == "cuda" and clip_bytes(shape) > resident_bytes:
            log.debug("clip tensors (%.1f GiB) stay on the host", clip_bytes(shape) / 2**30)
            place = torch.device("cpu")
        return cls(device=device, place=place, scratch=scratch)

    @property
    def bounded(self) -> bool:
        """Whether the networks run in chunks within the stage budgets: on a GPU, or with a scratch
        (host memory bounded); otherwise whole sub-videos and windows, as the reference."""
        return self.device.type == "cuda" or self.scratch is not None

    def alloc(self, name: str, shape: tuple[int, ...], dtype: torch.dtype):
        """A whole-clip array: a tensor on ``place``, or a :class:`DiskTensor` in the scratch.

        (Page-locking the host tensors was measured slower on an H100: registering them cost
        more than the faster copies saved.)
        """
        if self.scratch is None:
            return torch.empty(shape, dtype=dtype, device=self.place)
        if dtype not in _NUMPY_DTYPES:  # bfloat16 has no numpy dtype: disk arrays keep it as float32
            dtype = torch.float32
        return DiskTensor(self.scratch.array(name, shape[0], shape[1:], _NUMPY_DTYPES[dtype]))

    def output(self, shape: tuple[int, ...]) -> np.ndarray | DiskArray:
        """The (T, H, W, 3) uint8 output frames, in memory or in the scratch."""
        if self.scratch is None:
            return np.empty(shape, np.uint8)
        return self.scratch.array("output", shape[0], shape[1:], np.uint8)

    def keep(self, x: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """A stage's result in ``dtype``, where whole-clip tensors live."""
        return x.detach().to(dtype).to(self.place)

    def writer(self) -> StoreWriter:
        return StoreWriter(self)


class StoreWriter:
    """Writes a stage's results into whole-clip arrays (:meth:`ClipStore.alloc`).

    From a GPU to host arrays in memory the copies go back asynchronously (the GPU goes on
    with the next piece meanwhile, see ``runtime.transfer.HostReturns``); otherwise they are
    written at once. With a disk scratch they are written at once too: the page-locked
    staging memory (~1 GiB at 720p, kept by PyTorch's host cache) would undo the point of
    the scratch, a small host footprint. Call :meth:`finish` before the arrays are read.
    """

    def __init__(self, store: ClipStore) -> None:
        self.store = store
        host_bound = store.device.type == "cuda" and store.place.type == "cpu" and store.scratch is None
        self.returns = HostReturns(lambda where, x: where[0].__setitem__(where[1], x)) if host_bound else None

    def write(self, dst, index, x: torch.Tensor, dtype: torch.dtype) -> None:
        """``dst[index] = x`` in ``dtype``."""
        if self.returns is None:
            dst[index] = self.store.keep(x, dtype)
            return
        self.returns.put((dst, index), x.detach().to(dtype))
        self.returns.deliver()  # whatever has arrived

    def finish(self) -> None:
        if self.returns is not None:
            self.returns.deliver(wait=True)


class DiskTensor:
    """A :class:`DiskArray` indexed like a CPU tensor: reads return tensors, assignments take tensors."""

    def __init__(self, array: DiskArray) -> None:
        self.array = array

    @property
    def shape(self) -> torch.Size:
        return torch.Size(self.array.shape)

    def __len__(self) -> int:
        return len(self.array)

    @property
    def dtype(self) -> torch.dtype:
        return torch.from_numpy(np.empty(0, self.array.dtype)).dtype

    def __getitem__(self, index) -> torch.Tensor:
        return torch.from_numpy(self.array[index])

    def __setitem__(self, index, value) -> None:
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu()
            # bfloat16 has no numpy dtype: such arrays are float32 on disk (see ``ClipStore.alloc``)
            value = (value.float() if value.dtype == torch.bfloat16 else value).numpy()
        self.array[index] = value


class UnitFrames:
    """The engine's padded uint8 output (on disk or in memory), read as (H, W, 3) float32 frames in
    [0, 1], cropped to (h, w), one frame at a time."""

    def __init__(self, out: DiskArray | np.ndarray, height: int, width: int) -> None:
        self.out, self.height, self.width = out, height, width

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.out), self.height, self.width, 3)

    def __len__(self) -> int:
        return len(self.out)

    def __getitem__(self, i: int) -> np.ndarray:
        return self.out[i][:self.height, :self.width].astype(np.float32) / 255.0


class FrameFiller:
    """Fills the engine's (T, H+ph, W+pw, 3) uint8 frame array from the input frames on demand, in order.

    ``until(end)`` converts (float input), pads and stores the frames up to ``end`` not yet
    stored, ``INPUT_CHUNK`` at a time; reading them waits for frames still decoding.
    """

    def __init__(self, source, target, ph: int, pw: int) -> None:
        self.source, self.target, self.ph, self.pw = source, target, ph, pw
        self.filled = 0

    def until(self, end: int) -> None:
        end = min(end, len(self.source))
        while self.filled < end:
            a = self.filled
            b = min(len(self.source), a + INPUT_CHUNK)
            frames_u8 = torch.from_numpy(pad_bottom_right(_unit_to_u8(np.asarray(self.source[a:b])), self.ph, self.pw))
            if isinstance(self.target, torch.Tensor):
                upload_into(self.target[a:b], frames_u8)
            else:
                self.target[a:b] = frames_u8
            self.filled = b


def pad_bottom_right(x: np.ndarray, ph: int, pw: int) -> np.ndarray:
    """Reflect-pad a (T, H, W[, C]) stack at the bottom and right (edge where reflection is too short)."""
    if not (ph or pw):
        return x
    mode = "reflect" if ph < x.shape[1] and pw < x.shape[2] else "edge"
    return np.pad(x, ((0, 0), (0, ph), (0, pw)) + ((0, 0),) * (x.ndim - 3), mode=mode)


def _unit_to_u8(frames: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) float in [0, 1] -> uint8: ``clip(rint(x * 255), 0, 255)`` in float32, on torch's
    threads (the single-threaded numpy form took about a second for 80 frames of 720p). uint8
    frames pass through."""
    if frames.dtype == np.uint8:
        return frames
    x = torch.from_numpy(np.ascontiguousarray(frames, dtype=np.float32))
    return x.mul(255.0).round_().clamp_(0, 255).to(torch.uint8).numpy()


def signed(frames_u8: torch.Tensor) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float32 in [-1, 1], the reference's arithmetic."""
    return frames_u8.permute(0, 3, 1, 2).float().div_(255.0).mul_(2).sub_(1)  # in place: no temporaries
