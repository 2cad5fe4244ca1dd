"""Convolutions whose bias, folded batch norm and ReLU run inside cuDNN's kernel (GPU, half precision).

Used by RAFT's encoders and update block. Each helper falls back to the library layers where the fused
path does not apply (the CPU, float32, channel counts cuDNN does not fuse), so float32 results are untouched.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def fuses_epilogue(x: torch.Tensor, conv: nn.Conv2d) -> bool:
    """Whether ``conv`` on ``x`` may add its bias (and a ReLU) inside cuDNN's kernel.

    PyTorch's cuDNN convolution adds the bias in a second pass over the output, and a
    ReLU is a third: on RAFT's 1/8-scale maps at 1080p those passes cost as much as a
    third of each convolution (measured on an H100). Used on CUDA tensors in
    a half precision whose layer weights are stored in that dtype (RAFT under fp16/bf16),
    for output channels in multiples of 8 (126 channels ran no faster fused); elsewhere
    the library layers run, so float32 results are untouched.
    """
    return (x.is_cuda and x.dtype in (torch.float16, torch.bfloat16) and conv.weight.dtype == x.dtype
            and conv.out_channels % 8 == 0 and torch.backends.cudnn.enabled)


def in_weight_dtype(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """``x`` in the dtype of ``conv``'s half-precision weights on a GPU (the cast autocast makes for the
    convolution anyway); unchanged otherwise."""
    if x.is_cuda and conv.weight.dtype in (torch.float16, torch.bfloat16):
        return x.to(conv.weight.dtype)
    return x


def fused_conv_relu_check(device: torch.device, dtype: torch.dtype) -> str | None:
    """Whether cuDNN's fused convolution + bias + ReLU works on ``device`` in ``dtype``: None, or
    the problem in one line (an error, or a result away from float64 beyond the dtype's rounding).

    A small NHWC layer of RAFT's kind (64 -> 64 channels, 3x3, 24x40 pixels). Used by the engine
    before it lets RAFT take the fused path, and by ``propainter-wire doctor``.
    """
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, 64, 24, 40, generator=gen)
    weight = torch.randn(64, 64, 3, 3, generator=gen) / 24
    bias = torch.randn(64, generator=gen)
    exact = F.relu(F.conv2d(x.double(), weight.double(), bias.double(), padding=1))
    try:
        with torch.no_grad():
            got = torch.cudnn_convolution_relu(
                x.to(device, dtype).contiguous(memory_format=torch.channels_last),
                weight.to(device, dtype).contiguous(memory_format=torch.channels_last),
                bias.to(device, dtype), (1, 1), (1, 1), (1, 1), 1)
        error = (got.double().cpu() - exact).abs().max().item()
    except (RuntimeError, AttributeError) as exc:  # no fused engine for this GPU / cuDNN, or an old torch
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ''}"
    bound = 4 * torch.finfo(dtype).eps * exact.abs().max().item()  # a few roundings of the largest value
    if not error <= bound:
        return f"fused result off by {error:.3g} (bound {bound:.3g})"
    return None


def foldable_norm(norm: nn.Module) -> bool:
    """A batch norm in inference mode: an affine map per channel that a convolution can absorb."""
    return isinstance(norm, nn.BatchNorm2d) and not norm.training and norm.running_var is not None


def fold_norm(conv: nn.Conv2d, norm: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight and bias of ``norm(conv(x))`` as one convolution, in the convolution's dtype (computed in
    float32, or float64 for float64 layers, from the stored values; the weight keeps its memory format)."""
    exact = torch.promote_types(conv.weight.dtype, torch.float32)
    scale = norm.weight.to(exact) * torch.rsqrt(norm.running_var.to(exact) + norm.eps)  # (C_out,)
    weight = (conv.weight.to(exact) * scale[:, None, None, None]).to(conv.weight.dtype)
    bias = conv.bias.to(exact) if conv.bias is not None else torch.zeros_like(scale)
    return weight, ((bias - norm.running_mean.to(exact)) * scale + norm.bias.to(exact)).to(conv.weight.dtype)


class NormFolds:
    """:func:`fold_norm`'s results kept per (convolution, norm) pair, computed again only when a source
    tensor was replaced or written in place (its storage, dtype or version counter changed).

    Folding one pair is about ten small kernels; the context encoder folds 15 pairs on every call (once
    per RAFT chunk), so the GPU's queue is spared about 150 launches a chunk.
    """

    def __init__(self) -> None:
        self._folds: dict[tuple[int, int], tuple[tuple, tuple[torch.Tensor, torch.Tensor]]] = {}

    @staticmethod
    def _stamp(conv: nn.Conv2d, norm: nn.BatchNorm2d) -> tuple:
        tensors = (conv.weight, conv.bias, norm.weight, norm.bias, norm.running_mean, norm.running_var)
        return tuple((t.data_ptr(), t.dtype, t.device, _version(t)) if t is not None else None for t in tensors)

    def __call__(self, conv: nn.Conv2d, norm: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
        """``fold_norm(conv, norm)``, from the cache when its sources are unchanged."""
        key, stamp = (id(conv), id(norm)), self._stamp(conv, norm)
        hit = self._folds.get(key)
        if hit is None or hit[0] != stamp:
            hit = (stamp, fold_norm(conv, norm))
            self._folds[key] = hit
        return hit[1]


def _version(t: torch.Tensor) -> int:
    """The in-place write counter (inference tensors keep none: they cannot be written outside inference
    mode, and a new checkpoint brings new storage)."""
    try:
        return t._version
    except RuntimeError:
        return -1


def conv_relu(conv: nn.Conv2d, x: torch.Tensor, fused: bool = True,
              norm: nn.BatchNorm2d | None = None, folds: NormFolds | None = None) -> torch.Tensor:
    """``relu(conv(x))``, or ``relu(norm(conv(x)))`` with an inference batch norm: (N, C_in, H, W) ->
    (N, C_out, H', W').

    With ``fused``, one cuDNN kernel with the bias and ReLU in its epilogue where
    :func:`fuses_epilogue` allows (the sum is rounded to the half dtype once instead of
    twice; a norm is folded into the weights first, through ``folds`` when given); the library layers
    otherwise.
    """
    if fused and fuses_epilogue(x, conv):
        fold = folds if folds is not None else fold_norm
        weight, bias = (conv.weight, conv.bias) if norm is None else fold(conv, norm)
        return torch.cudnn_convolution_relu(x, weight, bias, conv.stride, conv.padding, conv.dilation, conv.groups)
    return F.relu(conv(x) if norm is None else norm(conv(x)))
