"""Choosing the compute device, with a quick check that a GPU computes correctly.

``resolve_device('auto')`` takes CUDA only when a small self-check passes: an fp32
matmul, a batched matmul, a convolution, ``grid_sample`` and ``deform_conv2d`` on
the GPU are compared with the same ops on the CPU in float64. A broken stack (a
mismatched cuBLAS, a driver too old for the build) then falls back to the CPU with
one warning line instead of producing garbage frames. A pass is remembered per GPU,
driver and library versions in the user's cache folder (:mod:`.check_cache`), so the
check runs once per machine and software stack, not on every run.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F

from ..errors import InputError

_LOG = logging.getLogger("propainter_wire")

# the largest relative error (max |got - ref| / max |ref|) accepted for fp32 without TF32
FP32_TOLERANCE = 1e-4

Case = tuple[str, Callable[..., torch.Tensor], tuple[torch.Tensor, ...]]


def resolve_device(name: str, log: logging.Logger = _LOG) -> torch.device:
    """The ``torch.device`` for a ``--device`` value.

    Args:
        name: ``'auto'``, ``'cpu'``, ``'cuda'`` or ``'cuda:N'``.
        log: where the ``'auto'`` fallback warning goes.
    Returns:
        the device. ``'auto'`` gives the current CUDA device when CUDA is available
        and ``gpu_self_check`` passes on it, else the CPU (with one warning line
        saying why).
    Raises:
        InputError: unknown name; CUDA asked for but unavailable; N out of range.
    """
    name = name.strip().lower()
    if name == "cpu":
        return torch.device("cpu")
    if name == "auto":
        if not torch.cuda.is_available():
            why = ("this torch build has no CUDA support" if torch.version.cuda is None
                   else "no CUDA device is visible (driver not loaded or CUDA_VISIBLE_DEVICES empty?)")
            log.info("device auto: %s; running on the CPU", why)
            return torch.device("cpu")
        device = torch.device("cuda", torch.cuda.current_device())
        failure = _remembered_self_check(device)
        if failure is not None:
            log.warning("device auto: GPU self-check failed on %s (%s); running on the CPU "
                        "(run `propainter-wire doctor` for details)", device, failure)
            return torch.device("cpu")
        return device
    if name == "cuda" or (name.startswith("cuda:") and name[5:].isdigit()):
        if not torch.cuda.is_available():
            why = "this torch build has no CUDA support" if torch.version.cuda is None else "no CUDA device is visible"
            raise InputError(f"--device {name}: CUDA is not available ({why}); use --device cpu or auto")
        index = torch.cuda.current_device() if name == "cuda" else int(name[5:])
        count = torch.cuda.device_count()
        if index >= count:
            raise InputError(f"--device {name}: only {count} CUDA device(s) visible (cuda:0..cuda:{count - 1})")
        return torch.device("cuda", index)
    raise InputError(f"unknown device '{name}' (auto, cpu, cuda or cuda:N)")


def _remembered_self_check(device: torch.device) -> str | None:
    """``gpu_self_check``, skipped when it passed before on the same GPU and software stack."""
    from . import check_cache

    return check_cache.remembered("self-check", device, lambda: gpu_self_check(device))


# ---------------------------------------------------------------------------
# the self-check
# ---------------------------------------------------------------------------
@contextlib.contextmanager
def tf32_disabled() -> Iterator[None]:
    """Turn TF32 off for matmul and cuDNN inside the block, restoring the flags after."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def _deform(x: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    from .vision_ops import deform_conv2d

    return deform_conv2d(x, offset, weight, None, mask, padding=1)


def _sample(x: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


def primitive_cases(seed: int = 0) -> list[Case]:
    """The ops the networks rely on, each with small random CPU float32 inputs.

    Returns:
        ``(name, fn, inputs)`` triples: matmul (128x96 @ 96x112), bmm (4x64x48 @ 4x48x80),
        conv2d (2x8x24x24, 3x3), grid_sample (bilinear, offsets of a few pixels) and
        deform_conv2d (modulated, 3x3, offsets in pixels).
    """
    g = torch.Generator().manual_seed(seed)

    def rand(*shape: int, scale: float = 1.0) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * scale

    ys, xs = torch.meshgrid(torch.linspace(-1, 1, 20), torch.linspace(-1, 1, 28), indexing="ij")
    grid = torch.stack([xs, ys], dim=-1).unsqueeze(0).repeat(2, 1, 1, 1) + rand(2, 20, 28, 2, scale=0.1)
    return [
        ("matmul", torch.matmul, (rand(128, 96), rand(96, 112))),
        ("bmm", torch.bmm, (rand(4, 64, 48), rand(4, 48, 80))),
        ("conv2d", lambda x, w, b: F.conv2d(x, w, b, padding=1), (rand(2, 8, 24, 24), rand(16, 8, 3, 3), rand(16))),
        ("grid_sample", _sample, (rand(2, 3, 20, 28), grid)),
        ("deform_conv2d", _deform,
         (rand(1, 4, 12, 16), rand(1, 18, 12, 16, scale=2.0), torch.rand(1, 9, 12, 16, generator=g),
          rand(6, 4, 3, 3))),
    ]


def relative_error(got: torch.Tensor, ref: torch.Tensor) -> float:
    """max |got - ref| / max(max |ref|, 1e-6), computed in float64 on the CPU (NaN -> inf)."""
    got64, ref64 = got.detach().double().cpu(), ref.detach().double().cpu()
    if got64.shape != ref64.shape:
        return float("inf")
    err = (got64 - ref64).abs().max().item()
    if err != err:  # NaN
        return float("inf")
    return err / max(ref64.abs().max().item(), 1e-6)


def run_case(case: Case, device: torch.device, dtype: torch.dtype = torch.float32,
             tolerance: float = FP32_TOLERANCE) -> str | None:
    """Run one case on ``device`` in ``dtype`` against a float64 CPU reference.

    Returns:
        None when it passes, else a one-line reason (the exception text or the error).
    """
    name, fn, inputs = case
    try:
        ref = fn(*(t.double() for t in inputs))
        got = fn(*(t.to(device=device, dtype=dtype) for t in inputs))
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        err = relative_error(got, ref)
    except Exception as exc:  # any failure of the device stack is a finding, not a crash
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return f"{name}: {type(exc).__name__}: {text[:300]}"
    if not err <= tolerance:
        return f"{name}: relative error {err:.3g} > {tolerance:g}"
    return None


def gpu_self_check(device: torch.device) -> str | None:
    """The quick check ``resolve_device('auto')`` runs: None when the GPU computes correctly.

    Runs every ``primitive_cases`` op in fp32 with TF32 off on ``device`` and compares
    it with a float64 CPU reference. Returns the first failure as one line.
    """
    with tf32_disabled(), torch.inference_mode():
        for case in primitive_cases():
            failure = run_case(case, device)
            if failure is not None:
                return failure
    return None
