"""Numeric precision of a run: which stage runs in which dtype, and TF32.

``--precision`` values and what they mean on a CUDA device:

- ``auto``: on a GPU the same as ``fp16``: every stage, RAFT included, in fp16. Measured
  on an H100 at 720p x 80: fp16 frames are 68.9 dB PSNR from fp32 inside the masks, closer
  than bf16 for flow completion and the transformer with RAFT in fp32 (58.8 dB), and 1.45x
  faster than that mix on an H200, because fp32 RAFT is most of its run. fp16 is also the
  half type of the reference's ``--fp16``.
- ``fp32``: everything in fp32, TF32 off (matmul and cuDNN): closest to the reference.
- ``tf32``: everything in fp32 with TF32 matmul/convolutions allowed.
- ``fp16`` / ``bf16``: every stage, RAFT included, under autocast in that dtype
  (asking for a half type explicitly is asking for it everywhere); the few matmuls
  kept in fp32 (RAFT's correlation volume, the deformable convolutions) may use TF32
  on a GPU, whose 10-bit mantissa matches fp16's.

On the CPU ``auto`` means bf16 where the CPU computes it natively (AVX512-BF16, AMX, Arm
BF16: 1.9-2.2x faster than fp32 on a 2-core Xeon with AMX, 58.7 dB from fp32 inside the masks,
no 8-bit value off by more than 1) and fp32 elsewhere; ``tf32`` is fp32 (TF32 is a GPU feature; a warning
says so), ``bf16`` runs under CPU autocast, and ``fp16`` is refused with an
``InputError`` (CPU fp16 is slow and some ops lack it). An explicit ``bf16`` on a
GPU without native bf16 is refused too; on a CPU without it (no AVX512-BF16 or AMX) it
runs emulated, about 10x slower than fp32, and a warning says so.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from ..config import PRECISIONS
from ..errors import InputError

_LOG = logging.getLogger("propainter_wire")

STAGES = ("raft", "flow_completion", "inpainter")


@dataclass(frozen=True)
class PrecisionPolicy:
    """Dtypes per stage.

    Attributes:
        name: the resolved precision (``fp32``, ``tf32``, ``fp16``, ``bf16``, or ``auto-fp16``
            for ``auto`` on a GPU, ``auto-bf16`` for ``auto`` on a CPU with native bf16).
        raft_dtype: the autocast dtype of RAFT (``torch.float32``: no autocast).
        model_autocast_dtype: the autocast dtype of flow completion and the
            transformer (None: fp32, no autocast).
        allow_tf32: TF32 for fp32 matmul and cuDNN convolutions.
    """

    name: str
    raft_dtype: torch.dtype = torch.float32
    model_autocast_dtype: torch.dtype | None = None
    allow_tf32: bool = False

    @contextlib.contextmanager
    def tf32_context(self) -> Iterator[None]:
        """Set ``torch.backends.cuda.matmul.allow_tf32`` and ``cudnn.allow_tf32`` to
        ``allow_tf32`` inside the block; restore the previous values afterwards."""
        saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = self.allow_tf32
        torch.backends.cudnn.allow_tf32 = self.allow_tf32
        try:
            yield
        finally:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved

    def stage_dtype(self, stage: str) -> torch.dtype | None:
        """The autocast dtype of ``stage`` (None: plain fp32)."""
        if stage not in STAGES:
            raise ValueError(f"unknown stage '{stage}' (one of {', '.join(STAGES)})")
        if stage == "raft":
            return None if self.raft_dtype == torch.float32 else self.raft_dtype
        return self.model_autocast_dtype

    def autocast(self, device: torch.device | str, stage: str) -> contextlib.AbstractContextManager:
        """The autocast context for ``stage`` on ``device`` (``nullcontext`` when fp32)."""
        dtype = self.stage_dtype(stage)
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


@contextlib.contextmanager
def cudnn_autotune(enabled: bool) -> Iterator[None]:
    """``torch.backends.cudnn.benchmark = enabled`` inside the block, restored afterwards.

    With it cuDNN times its algorithms for each new convolution shape and keeps the
    fastest (the first call of a shape pays the timing). Worth it for stages that
    repeat a few shapes many times (RAFT's 20 refinement steps per pair); the chosen
    algorithm may differ from run to run, so results may differ in the last bits.
    """
    saved = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = enabled
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = saved


@contextlib.contextmanager
def tf32_matmul(allowed: bool) -> Iterator[None]:
    """Also allow TF32 for fp32 matmuls inside the block when ``allowed`` (an enabled setting stays
    enabled); the setting is restored afterwards. cuDNN's TF32 setting is left alone."""
    saved = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = saved or allowed
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = saved


# layers whose forward is one autocast-listed op (conv / linear): under autocast their weights are cast
# to the autocast dtype at every call (the cast cache only serves weights that require grad)
_AUTOCAST_CAST_LAYERS = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d, torch.nn.ConvTranspose2d,
                         torch.nn.Linear)


def precast_for_autocast(module: torch.nn.Module, dtype: torch.dtype) -> int:
    """Store the weights of ``module``'s plain conv and linear layers in ``dtype``, in place.

    Under ``torch.autocast(dtype)`` these layers run in ``dtype`` anyway and autocast
    casts their fp32 weights on every call (in inference mode nothing caches the casts:
    one extra kernel and allocation per layer call). Casting them once gives the same
    values (the same round-to-nearest) without those kernels. Only exact instances of
    the standard layers are cast, so custom layers that read their own weights in fp32
    (deformable convolutions) keep them; norm layers stay fp32, as under autocast.
    The module must then only run under autocast in ``dtype``.

    Returns:
        the number of layers cast.
    """
    count = 0
    for layer in module.modules():
        if type(layer) in _AUTOCAST_CAST_LAYERS and layer.weight.dtype != dtype:
            layer.to(dtype)
            count += 1
    return count


def active_autocast_dtype(device_type: str) -> torch.dtype | None:
    """The dtype autocast casts to on ``device_type`` ("cuda", "cpu") right now; None outside autocast."""
    try:
        enabled = torch.is_autocast_enabled(device_type)
        dtype = torch.get_autocast_dtype(device_type)
    except (TypeError, AttributeError):  # torch < 2.4: per-device functions
        if device_type == "cpu":
            enabled, dtype = torch.is_autocast_cpu_enabled(), torch.get_autocast_cpu_dtype()
        else:
            enabled, dtype = torch.is_autocast_enabled(), torch.get_autocast_gpu_dtype()
    return dtype if enabled else None


def cuda_bf16_native(device: torch.device) -> bool:
    """True when ``device`` has native bf16 (compute capability >= 8.0)."""
    try:
        return torch.cuda.get_device_capability(device)[0] >= 8
    except Exception:
        return False


def cpu_bf16_native(cpuinfo: str | None = None) -> bool | None:
    """True when this CPU computes bf16 natively (x86 AVX512-BF16 or AMX, Arm BF16), False when its
    flags lack them, None where ``/proc/cpuinfo`` is absent (macOS, Windows: not known)."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo") as handle:
                cpuinfo = handle.read(1 << 16)  # the first processor's block holds its flags
        except OSError:
            return None
    flags = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    if not flags:
        return None
    return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})


def _gpu_name(device: torch.device) -> str:
    try:
        return torch.cuda.get_device_name(device)
    except Exception:
        return str(device)


def resolve_precision(name: str, device: torch.device | str, log: logging.Logger = _LOG,
                      cpu_bf16: bool | None = None) -> PrecisionPolicy:
    """The ``PrecisionPolicy`` for a ``--precision`` value on ``device`` (see the module docstring).

    ``cpu_bf16`` says whether the CPU computes bf16 natively (default: :func:`cpu_bf16_native`).

    Raises:
        InputError: unknown name; fp16 on the CPU; bf16 on a GPU without native bf16.
    """
    device = torch.device(device)
    if name not in PRECISIONS:
        raise InputError(f"unknown precision '{name}' (choose from {', '.join(PRECISIONS)})")
    on_gpu = device.type == "cuda"
    if name == "fp32":
        return PrecisionPolicy("fp32")
    if name == "tf32":
        if not on_gpu:
            log.warning("precision tf32: TF32 is a GPU feature; running fp32 on the %s", device.type)
            return PrecisionPolicy("fp32")
        return PrecisionPolicy("tf32", allow_tf32=True)
    if name == "auto":
        if not on_gpu:
            if (cpu_bf16_native() if cpu_bf16 is None else cpu_bf16):
                # 2-core Xeon with AMX, 256x144x12: 7.2-7.7 s against 13.3-14.2 s in fp32, 58.7 dB from fp32
                # inside the masks (no value off by more than 1 of 255)
                return PrecisionPolicy("auto-bf16", raft_dtype=torch.bfloat16,
                                       model_autocast_dtype=torch.bfloat16)
            return PrecisionPolicy("fp32")
        return PrecisionPolicy("auto-fp16", raft_dtype=torch.float16, model_autocast_dtype=torch.float16,
                               allow_tf32=True)
    half = torch.float16 if name == "fp16" else torch.bfloat16
    if half == torch.float16 and not on_gpu:
        raise InputError(f"--precision fp16 needs a CUDA device (running on {device.type}); use fp32 or bf16")
    if half == torch.bfloat16 and on_gpu and not cuda_bf16_native(device):
        raise InputError(f"--precision bf16: {_gpu_name(device)} has no native bf16; use fp16 or auto")
    if half == torch.bfloat16 and not on_gpu and cpu_bf16_native() is False:
        # an AVX2-only EPYC ran the 256x144x12 parity clip 10.4x slower in bf16 than in fp32 (245 s, 23.7 s)
        log.warning("precision bf16: this CPU has no native bf16 (AVX512-BF16, AMX): it is emulated, about "
                    "10x slower than fp32; fp32 (the default) is faster here")
    return PrecisionPolicy(name, raft_dtype=half, model_autocast_dtype=half, allow_tf32=on_gpu)
