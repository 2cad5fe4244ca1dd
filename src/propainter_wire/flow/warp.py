"""Backward warping by optical flow and the forward-backward consistency check.

Flows are in pixels at the resolution of the tensor they warp, channel 0 is x
(to the right), channel 1 is y (down). A flow ``f`` of frame ``a`` towards frame
``b`` says where each pixel of ``a`` is found in ``b``; ``flow_warp(x_b, f)``
therefore pulls ``b``'s content into ``a``'s grid.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def flow_warp(x: torch.Tensor, flow: torch.Tensor, mode: str = "bilinear",
              padding_mode: str = "zeros") -> torch.Tensor:
    """Sample ``x`` at ``grid + flow`` (align_corners=True convention).

    Args:
        x: (N, C, H, W) any range.
        flow: (N, 2, H, W) pixels, x then y.
        mode: 'bilinear' or 'nearest'.
    Returns:
        (N, C, H, W), zeros where the flow points outside (padding_mode='zeros').
    """
    n, _, h, w = x.shape
    if flow.shape[-2:] != (h, w):
        raise ValueError(f"flow {tuple(flow.shape)} and input {tuple(x.shape)} differ in size")
    ys = torch.arange(h, device=flow.device, dtype=x.dtype)
    xs = torch.arange(w, device=flow.device, dtype=x.dtype)
    # absolute sampling positions in pixels, (N, H, W)
    px = xs.view(1, 1, w) + flow[:, 0].to(x.dtype)
    py = ys.view(1, h, 1) + flow[:, 1].to(x.dtype)
    # normalise to [-1, 1] with the corners on pixel centres; this exact order of
    # operations matters: 'nearest' sampling rounds ties, and half-pixel flows hit them
    gx = 2.0 * px / max(w - 1, 1) - 1.0
    gy = 2.0 * py / max(h - 1, 1) - 1.0
    grid = torch.stack((gx, gy), dim=-1)  # (N, H, W, 2)
    return F.grid_sample(x, grid, mode=mode, padding_mode=padding_mode, align_corners=True)


def fb_consistency(flow_fw: torch.Tensor, flow_bw: torch.Tensor,
                   alpha1: float = 0.01, alpha2: float = 0.5) -> torch.Tensor:
    """Forward-backward consistency of a flow pair (Sundaram et al.).

    A pixel is valid when ``|f + b(x + f)|^2 < alpha1 * (|f|^2 + |b(x + f)|^2) + alpha2``.

    Args:
        flow_fw: (N, 2, H, W) flow of frame a towards b, pixels.
        flow_bw: (N, 2, H, W) flow of frame b towards a, pixels.
    Returns:
        (N, 1, H, W) 1.0 where consistent, 0.0 elsewhere, dtype of ``flow_fw``.
    """
    bw_at_target = flow_warp(flow_bw, flow_fw)
    round_trip = flow_fw + bw_at_target
    magnitude = flow_fw.square().sum(1, keepdim=True) + bw_at_target.square().sum(1, keepdim=True)
    threshold = alpha1 * magnitude + alpha2
    return (round_trip.square().sum(1, keepdim=True) < threshold).to(flow_fw.dtype)
