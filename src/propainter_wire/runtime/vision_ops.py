"""torchvision's compiled deformable convolution, without importing the torchvision package.

``import torchvision`` runs the package's ``__init__``, which imports ``torchvision.models``
and through it ``torch._dynamo``, FSDP and sympy: 1.24 s of a 1.47 s import on a 2-core
CPU, and more on a machine whose site-packages has no bytecode cache. The networks need
one kernel of it, which lives in the package's compiled ops library: that library is
loaded on its own (a few milliseconds) and the kernel called through ``torch.ops``.
When the library cannot be found or loaded, the package is imported after all.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from pathlib import Path

import torch

_LOADING = threading.Lock()


def _ops_registered() -> bool:
    try:
        torch.ops.torchvision.deform_conv2d  # noqa: B018 (the lookup is the check)
    except (AttributeError, RuntimeError):
        return False
    return True


def _load_ops() -> None:
    """Register torchvision's operators with torch, the cheapest way available."""
    with _LOADING:
        if _ops_registered():
            return
        if "torchvision" not in sys.modules:
            spec = importlib.util.find_spec("torchvision")  # finds the folder without running __init__
            folder = Path(spec.origin).parent if spec is not None and spec.origin else None
            for library in sorted(folder.glob("_C*.so")) if folder is not None else []:
                try:
                    torch.ops.load_library(str(library))
                except (OSError, RuntimeError):
                    continue
                if _ops_registered():
                    return
        import torchvision.ops  # noqa: F401 (registers the operators)


def deform_conv2d(x: torch.Tensor, offset: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                  mask: torch.Tensor, stride: int = 1, padding: int = 0, dilation: int = 1) -> torch.Tensor:
    """``torchvision.ops.deform_conv2d`` with a modulation mask, square stride/padding/dilation.

    Args:
        x: (N, C, H, W) input.
        offset: (N, 2 * G * kh * kw, Ho, Wo) sampling offsets in pixels, (dy, dx) pairs.
        weight: (Cout, C / groups, kh, kw); bias: (Cout,) or None.
        mask: (N, G * kh * kw, Ho, Wo) modulation.
    Returns:
        (N, Cout, Ho, Wo).
    """
    _load_ops()
    kh, kw = weight.shape[-2:]
    groups = x.shape[1] // weight.shape[1]
    offset_groups = offset.shape[1] // (2 * kh * kw)
    if bias is None:
        bias = torch.zeros(weight.shape[0], device=x.device, dtype=x.dtype)
    return torch.ops.torchvision.deform_conv2d(x, weight, offset, mask, bias, stride, stride, padding, padding,
                                               dilation, dilation, groups, offset_groups, True)
