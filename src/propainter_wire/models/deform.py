"""Modulated deformable convolution (DCNv2), as ``torchvision.ops.deform_conv2d``.

Two implementations of the same arithmetic:

- on a GPU, torchvision's kernel (its im2col kernel and a GEMM);
- on the CPU, bilinear sampling with ``grid_sample`` (vectorised, multi-threaded) and
  one matrix product, which runs under autocast like any matmul. torchvision's CPU
  kernel is scalar code and has no bfloat16: it took a fifth of a bf16 CPU run.

Sampling rule (torchvision's): output pixel (y, x), deformable group g and kernel tap
(i, j) read input channel c of group g at ``(y * stride - padding + i * dilation + dy,
x * stride - padding + j * dilation + dx)``, bilinearly, corners outside the image
counting as 0, times the tap's modulation; the products are summed with the weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..runtime.vision_ops import deform_conv2d as _torchvision_deform_conv2d

# device types that take the sampled form (benchmarks may widen it to compare on a GPU)
SAMPLED_DEVICE_TYPES: frozenset[str] = frozenset({"cpu"})


def modulated_deform_conv2d(x: torch.Tensor, offset: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                            mask: torch.Tensor, stride: int = 1, padding: int = 0,
                            dilation: int = 1) -> torch.Tensor:
    """Deformable convolution.

    Args:
        x: (N, C, H, W) input.
        offset: (N, 2 * G * kh * kw, Ho, Wo) sampling offsets in input pixels, (dy, dx) pairs
            ordered by group, then tap (row-major over the kernel).
        weight: (Cout, C, kh, kw); bias: (Cout,) or None.
        mask: (N, G * kh * kw, Ho, Wo) modulation, usually in [0, 1].
    Returns:
        (N, Cout, Ho, Wo).
    """
    n, c, h, w = x.shape
    kh, kw = weight.shape[-2:]
    groups = offset.shape[1] // (2 * kh * kw)
    sampled_ok = x.device.type in SAMPLED_DEVICE_TYPES and h > 1 and w > 1 and groups >= 1 and c % groups == 0
    if not sampled_ok:
        return _torchvision_deform_conv2d(x, offset, weight, bias, mask, stride=stride, padding=padding,
                                          dilation=dilation)
    return _sampled_deform_conv2d(x, offset, weight, bias, mask, groups, stride, padding, dilation)


def _sampled_deform_conv2d(x: torch.Tensor, offset: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                           mask: torch.Tensor, groups: int, stride: int, padding: int,
                           dilation: int) -> torch.Tensor:
    """The CPU form: ``grid_sample`` at every tap's position, then one matmul."""
    n, c, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    taps = kh * kw
    ho, wo = offset.shape[-2:]
    dtype = torch.promote_types(x.dtype, offset.dtype)
    # base positions (taps, Ho, Wo) of each tap before the offsets, input pixels
    ky = torch.arange(kh, device=x.device, dtype=dtype).repeat_interleave(kw) * dilation - padding  # (taps,)
    kx = torch.arange(kw, device=x.device, dtype=dtype).repeat(kh) * dilation - padding
    base_y = ky[:, None, None] + (torch.arange(ho, device=x.device, dtype=dtype) * stride)[None, :, None]
    base_x = kx[:, None, None] + (torch.arange(wo, device=x.device, dtype=dtype) * stride)[None, None, :]
    off = offset.to(dtype).view(n, groups, taps, 2, ho, wo)
    pos_y = base_y + off[:, :, :, 0]  # (N, G, taps, Ho, Wo)
    pos_x = base_x + off[:, :, :, 1]
    # grid_sample's align_corners=True maps -1 and 1 to the first and last pixel centres
    grid = torch.stack((pos_x * (2.0 / (w - 1)) - 1.0, pos_y * (2.0 / (h - 1)) - 1.0), dim=-1)
    grid = grid.view(n * groups, taps * ho, wo, 2)
    values = F.grid_sample(x.to(dtype).reshape(n * groups, c // groups, h, w), grid, mode="bilinear",
                           padding_mode="zeros", align_corners=True)  # (N*G, C/G, taps*Ho, Wo)
    values = values.view(n, groups, c // groups, taps, ho, wo) * mask.to(dtype).view(n, groups, 1, taps, ho, wo)
    columns = values.view(n, c * taps, ho * wo)  # channel-major, then tap: the flattened weight's order
    out = torch.matmul(weight.reshape(c_out, c * taps).to(dtype), columns)  # (N, Cout, Ho*Wo)
    if bias is not None:
        out = out + bias.to(out.dtype).view(1, c_out, 1)
    return out.view(n, c_out, ho, wo)
