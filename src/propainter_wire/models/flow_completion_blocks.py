"""Building blocks of the recurrent flow completion network (see :mod:`.flow_completion`).

Attribute names and ``nn.Sequential`` indices are the checkpoint's key layout
(``recurrent_flow_completion.pth``) and must not be renamed. Shapes follow the
conventions of :mod:`.flow_completion`: features (N, C, h, w) per frame or
(B, C, T, h, w) for the 3D blocks.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .deform import modulated_deform_conv2d

# ---------------------------------------------------------------------------
# second-order deformable alignment
# ---------------------------------------------------------------------------


class ModulatedDeformConv2d(nn.Module):
    """A modulated deformable 3x3-style conv (DCNv2) holding only ``weight``/``bias``.

    Thin wrapper over :func:`.deform.modulated_deform_conv2d` (torchvision's
    ``deform_conv2d`` semantics) that makes the call safe:
    offsets, modulation mask, weight and bias are cast to the input's dtype (so it
    runs under ``torch.autocast`` and in half precision; bfloat16, which the kernels
    lack, is computed in float32 and cast back), and non-finite offsets
    are replaced by 0 before they reach the kernel (torchvision's CPU kernel turns
    a NaN offset into a wild memory index).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, dilation: int = 1, deform_groups: int = 1) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = (kernel_size, kernel_size)
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.deform_groups = deform_groups
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels))
        self._reset_main_conv()

    def _reset_main_conv(self) -> None:
        bound = 1.0 / math.sqrt(self.in_channels * self.kernel_size[0] * self.kernel_size[1])
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.zeros_(self.bias)

    def deform(self, x: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Deformable conv of ``x``.

        Args:
            x: (N, C_in, H, W).
            offset: (N, 2 * G * k * k, H', W') pixels at ``x``'s scale, (dy, dx) pairs.
            mask: (N, G * k * k, H', W') modulation in [0, 1].
        Returns:
            (N, C_out, H', W') in ``x``'s dtype.
        """
        # torchvision's kernels cover float16/32/64 but not bfloat16: run that in float32
        dtype = torch.float32 if x.dtype == torch.bfloat16 else x.dtype
        offset = torch.nan_to_num(offset.to(dtype), nan=0.0, posinf=0.0, neginf=0.0)
        out = modulated_deform_conv2d(x.to(dtype), offset, self.weight.to(dtype), self.bias.to(dtype),
                                      mask.to(dtype), stride=self.stride, padding=self.padding, dilation=self.dilation)
        return out.to(x.dtype)


class Conv3dAs2d(nn.Conv3d):
    """``nn.Conv3d`` (same parameters and state-dict keys) computed as a 2-D convolution where it is one.

    The flow-completion network's 3-D convolutions are separable: (1, k, k) kernels
    are a 2-D convolution of every frame, (k, 1, 1) kernels a 2-D convolution of the
    (T, H*W) plane. cuDNN's 2-D kernels are far better tuned than its 3-D ones (the
    3-channel (1, 5, 5) input layer took 16 ms per call at 720p on an H100). Same
    arithmetic up to the convolution algorithm's summation order; other shapes run
    as plain ``Conv3d``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) -> (B, C', T', H', W')."""
        (kt, kh, kw), (st, sh, sw), (dt, dh, dw) = self.kernel_size, self.stride, self.dilation
        if isinstance(self.padding, str):
            return super().forward(x)
        pt, ph, pw = self.padding
        b, c, t, h, w = x.shape
        if kt == 1 and st == 1 and pt == 0:  # per frame
            frames = x.transpose(1, 2).reshape(b * t, c, h, w)
            if self.padding_mode != "zeros":
                frames = F.pad(frames, (pw, pw, ph, ph), mode=self.padding_mode)
                ph = pw = 0
            out = F.conv2d(frames, self.weight[:, :, 0], self.bias, (sh, sw), (ph, pw), (dh, dw), self.groups)
            return out.view(b, t, *out.shape[1:]).transpose(1, 2)  # a (B, C', T, H', W') view
        if kh == kw == 1 and sh == sw == 1 and ph == pw == 0 and self.padding_mode == "zeros":  # along time
            out = F.conv2d(x.reshape(b, c, t, h * w), self.weight[..., 0], self.bias, (st, 1), (pt, 0), (dt, 1),
                           self.groups)
            return out.view(*out.shape[:3], h, w)
        return super().forward(x)


def leaky_relu(slope: float) -> nn.LeakyReLU:
    return nn.LeakyReLU(negative_slope=slope, inplace=True)


class SecondOrderDeformAlign(ModulatedDeformConv2d):
    """Aligns the previous two propagated features to the current frame.

    ``conv_offset`` predicts, from the conditioning features, the offsets (bounded
    by ``max_residue_magnitude`` pixels through a tanh) and the modulation mask of
    the deformable conv, which then reads the two stacked previous features.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, padding: int = 0,
                 deform_groups: int = 1, max_residue_magnitude: float = 5.0) -> None:
        super().__init__(in_channels, out_channels, kernel_size, padding=padding, deform_groups=deform_groups)
        self.max_residue_magnitude = max_residue_magnitude
        taps = kernel_size * kernel_size
        c = out_channels
        self.conv_offset = nn.Sequential(
            nn.Conv2d(3 * c, c, 3, 1, 1), leaky_relu(0.1),
            nn.Conv2d(c, c, 3, 1, 1), leaky_relu(0.1),
            nn.Conv2d(c, c, 3, 1, 1), leaky_relu(0.1),
            nn.Conv2d(c, 3 * taps * deform_groups, 3, 1, 1),  # (dy,dx) offsets + modulation
        )
        # start as a plain conv: zero offsets, modulation 0.5
        nn.init.zeros_(self.conv_offset[-1].weight)
        nn.init.zeros_(self.conv_offset[-1].bias)

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """
        Args:
            x: (N, in_channels, h, w) the two previous features, stacked on channels.
            condition: (N, 3 * out_channels, h, w).
        Returns:
            (N, out_channels, h, w) the aligned feature.
        """
        raw = self.conv_offset(condition)  # (N, 3*G*k*k, h, w)
        n_offset = 2 * raw.shape[1] // 3
        offset = self.max_residue_magnitude * torch.tanh(raw[:, :n_offset])
        modulation = torch.sigmoid(raw[:, n_offset:])
        return self.deform(x, offset, modulation)


class BidirectionalFeaturePropagation(nn.Module):
    """Second-order grid propagation over time, first backward then forward.

    Each direction walks the frames in its order; at every step the running feature
    and the one from two steps back are deformably aligned to the current frame and
    refined by a residual conv block that also sees the current frame (and, for the
    forward pass, the backward pass's feature of the same frame). The two directions
    are fused by a 1x1 conv and added to the input.
    """

    directions = ("backward_", "forward_")

    def __init__(self, channel: int) -> None:
        super().__init__()
        self.channel = channel
        self.deform_align = nn.ModuleDict()
        self.backbone = nn.ModuleDict()
        for n_before, name in enumerate(self.directions):
            # reads the previous two features (2C), 16 offset groups
            self.deform_align[name] = SecondOrderDeformAlign(2 * channel, channel, kernel_size=3, padding=1,
                                                             deform_groups=16)
            # inputs: current frame, features of the directions already done, running feature
            self.backbone[name] = nn.Sequential(
                nn.Conv2d((2 + n_before) * channel, channel, 3, 1, 1),
                leaky_relu(0.1),
                nn.Conv2d(channel, channel, 3, 1, 1),
            )
        self.fusion = nn.Conv2d(2 * channel, channel, kernel_size=1)

    def _propagate(self, name: str, frames: list[torch.Tensor], done: list[list[torch.Tensor]]) -> list[torch.Tensor]:
        """Run one direction; returns its (N, C, h, w) features in time order."""
        order = range(len(frames) - 1, -1, -1) if name.startswith("backward") else range(len(frames))
        running = frames[0].new_zeros(frames[0].shape)
        history: list[torch.Tensor] = []  # in processing order
        for step, t in enumerate(order):
            current = frames[t]
            if step > 0:
                two_back = history[-2] if step > 1 else torch.zeros_like(running)
                condition = torch.cat([running, current, two_back], dim=1)  # (N, 3C, h, w)
                running = self.deform_align[name](torch.cat([running, two_back], dim=1), condition)
            block_in = torch.cat([current, *[feats[t] for feats in done], running], dim=1)
            running = running + self.backbone[name](block_in)
            history.append(running)
        return history[::-1] if name.startswith("backward") else history

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """
        Args:
            x: (B, T, C, h, w).
        Returns:
            (B, T, C, h, w).
        """
        frames = list(x.unbind(dim=1))
        done: list[list[torch.Tensor]] = []
        for name in self.directions:
            done.append(self._propagate(name, frames, done))
        fused = [self.fusion(torch.cat(per_frame, dim=1)) for per_frame in zip(*done, strict=True)]
        return torch.stack(fused, dim=1) + x


# ---------------------------------------------------------------------------
# encoder / decoder blocks
# ---------------------------------------------------------------------------


class P3DBlock(nn.Module):
    """Pseudo-3D conv: a (1, k, k) spatial conv + LeakyReLU, then a (3, 1, 1) temporal conv.

    The temporal conv is dilated by 2 with matching zero padding, so T is kept.
    Input/output (B, C, T, H, W); spatial size divided by ``stride``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int, padding: int,
                 use_residual: bool = False, bias: bool = True) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(
            Conv3dAs2d(in_channels, out_channels, (1, kernel_size, kernel_size), stride=(1, stride, stride),
                      padding=(0, padding, padding), bias=bias),
            leaky_relu(0.2),
        )
        self.conv2 = nn.Sequential(
            Conv3dAs2d(out_channels, out_channels, (3, 1, 1), padding=(2, 0, 0), dilation=(2, 1, 1), bias=bias),
        )
        self.use_residual = use_residual

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.conv1(feats))
        return feats + out if self.use_residual else out


class Upsample2xConv(nn.Module):
    """Bilinear x2 upsampling (align_corners=True) followed by a conv.

    Stored under the checkpoint name ``<parent>.<i>.conv``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, padding: int = 0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=kernel_size, stride=1, padding=padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True))


class EdgeDetection(nn.Module):
    """Flow-edge head used only as a training loss; kept for the checkpoint's keys.

    (N, 2, H, W) flow -> (N, 1, H, W) edge probability in [0, 1].
    """

    def __init__(self, in_ch: int = 2, out_ch: int = 1, mid_ch: int = 16) -> None:
        super().__init__()
        self.projection = nn.Sequential(nn.Conv2d(in_ch, mid_ch, 3, 1, 1), leaky_relu(0.2))
        self.mid_layer_1 = nn.Sequential(nn.Conv2d(mid_ch, mid_ch, 3, 1, 1), leaky_relu(0.2))
        self.mid_layer_2 = nn.Sequential(nn.Conv2d(mid_ch, mid_ch, 3, 1, 1))
        self.l_relu = leaky_relu(0.01)
        self.out_layer = nn.Conv2d(mid_ch, out_ch, kernel_size=1)

    def forward(self, flow: torch.Tensor) -> torch.Tensor:
        projected = self.projection(flow)
        edge = self.l_relu(projected + self.mid_layer_2(self.mid_layer_1(projected)))
        return torch.sigmoid(self.out_layer(edge))
