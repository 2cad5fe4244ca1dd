"""Recurrent flow completion network (ProPainter's ``RecurrentFlowCompleteNet``).

Fills optical flow inside a mask. The network is a small 3D-conv encoder (stride
8), a second-order deformable bidirectional propagation over time at 1/8 scale,
and a 2D decoder back to full resolution. It loads ``recurrent_flow_completion.pth``
unchanged: attribute names and ``nn.Sequential`` indices below are the checkpoint's
key layout and must not be renamed (``edgeDetector`` included).

Conventions used throughout this module:

- flows: (B, T-1, 2, H, W) float, pixels at the working resolution, channel 0 is
  x (right), channel 1 is y (down). ``flows_f[:, i]`` goes from frame i to i+1,
  ``flows_b[:, i]`` from frame i+1 back to frame i.
- masks: (B, T, 1, H, W) float in {0, 1}, 1 = flow unknown (to be filled); one
  per frame, so one more than there are flows.
- H and W must be multiples of 8 (the reference resizes its input to that).

Every method is stateless over time, so the caller may run it on any slice of a
clip (``flows[:, s:e]`` with ``masks[:, s:e + 1]``), as the reference does for
long videos with a few flows of overlap each side.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.ops import deform_conv2d

# ---------------------------------------------------------------------------
# second-order deformable alignment
# ---------------------------------------------------------------------------


class ModulatedDeformConv2d(nn.Module):
    """A modulated deformable 3x3-style conv (DCNv2) holding only ``weight``/``bias``.

    Thin wrapper over ``torchvision.ops.deform_conv2d`` that makes the call safe:
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
        out = deform_conv2d(x.to(dtype), offset, self.weight.to(dtype), self.bias.to(dtype),
                            stride=self.stride, padding=self.padding, dilation=self.dilation,
                            mask=mask.to(dtype))
        return out.to(x.dtype)


def _leaky(slope: float) -> nn.LeakyReLU:
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
            nn.Conv2d(3 * c, c, 3, 1, 1), _leaky(0.1),
            nn.Conv2d(c, c, 3, 1, 1), _leaky(0.1),
            nn.Conv2d(c, c, 3, 1, 1), _leaky(0.1),
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
                _leaky(0.1),
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
            nn.Conv3d(in_channels, out_channels, (1, kernel_size, kernel_size), stride=(1, stride, stride),
                      padding=(0, padding, padding), bias=bias),
            _leaky(0.2),
        )
        self.conv2 = nn.Sequential(
            nn.Conv3d(out_channels, out_channels, (3, 1, 1), padding=(2, 0, 0), dilation=(2, 1, 1), bias=bias),
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
        self.projection = nn.Sequential(nn.Conv2d(in_ch, mid_ch, 3, 1, 1), _leaky(0.2))
        self.mid_layer_1 = nn.Sequential(nn.Conv2d(mid_ch, mid_ch, 3, 1, 1), _leaky(0.2))
        self.mid_layer_2 = nn.Sequential(nn.Conv2d(mid_ch, mid_ch, 3, 1, 1))
        self.l_relu = _leaky(0.01)
        self.out_layer = nn.Conv2d(mid_ch, out_ch, kernel_size=1)

    def forward(self, flow: torch.Tensor) -> torch.Tensor:
        projected = self.projection(flow)
        edge = self.l_relu(projected + self.mid_layer_2(self.mid_layer_1(projected)))
        return torch.sigmoid(self.out_layer(edge))


# ---------------------------------------------------------------------------
# the network
# ---------------------------------------------------------------------------


class RecurrentFlowCompleteNet(torch.nn.Module):
    """ProPainter's recurrent flow completion network (``recurrent_flow_completion.pth``).

    Use :meth:`forward_bidirect_flow` then :meth:`combine_flow`; see the module
    docstring for shapes and units. Build, then load weights with
    ``propainter_wire.weights.load_flow_completion``.
    """

    feat_channels = 128

    def __init__(self) -> None:
        super().__init__()
        c = self.feat_channels
        # (B, 3, T, H, W) -> (B, 32, T, H/2, W/2)
        self.downsample = nn.Sequential(
            nn.Conv3d(3, 32, (1, 5, 5), stride=(1, 2, 2), padding=(0, 2, 2), padding_mode="replicate"),
            _leaky(0.2),
        )
        # -> (B, 64, T, H/4, W/4)
        self.encoder1 = nn.Sequential(
            P3DBlock(32, 32, 3, 1, 1), _leaky(0.2),
            P3DBlock(32, 64, 3, 2, 1), _leaky(0.2),
        )
        # -> (B, 128, T, H/8, W/8)
        self.encoder2 = nn.Sequential(
            P3DBlock(64, 64, 3, 1, 1), _leaky(0.2),
            P3DBlock(64, c, 3, 2, 1), _leaky(0.2),
        )
        # spatial context: dilations 3, 2, 1 (padding = dilation keeps the size)
        mid: list[nn.Module] = []
        for dil in (3, 2, 1):
            mid += [nn.Conv3d(c, c, (1, 3, 3), padding=(0, dil, dil), dilation=(1, dil, dil)), _leaky(0.2)]
        self.mid_dilation = nn.Sequential(*mid)

        self.feat_prop_module = BidirectionalFeaturePropagation(c)

        # (N, 128, H/8, W/8) -> (N, 64, H/4, W/4), plus the encoder1 skip
        self.decoder2 = nn.Sequential(
            nn.Conv2d(c, c, 3, 1, 1), _leaky(0.2),
            Upsample2xConv(c, 64, 3, 1), _leaky(0.2),
        )
        # -> (N, 32, H/2, W/2)
        self.decoder1 = nn.Sequential(
            nn.Conv2d(64, 64, 3, 1, 1), _leaky(0.2),
            Upsample2xConv(64, 32, 3, 1), _leaky(0.2),
        )
        # -> (N, 2, H, W) flow in pixels
        self.upsample = nn.Sequential(
            nn.Conv2d(32, 32, 3, padding=1), _leaky(0.2),
            Upsample2xConv(32, 2, 3, 1),
        )
        self.edgeDetector = EdgeDetection()  # 2 -> 16 -> 1 channels

    def forward(self, masked_flows: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """Complete one direction of flows.

        Args:
            masked_flows: (B, L, 2, H, W) pixels, already zeroed inside the mask.
            masks: (B, L, 1, H, W) in {0, 1}, 1 = unknown; one per flow.
        Returns:
            (B, L, 2, H, W) predicted flow everywhere (pixels). The training-only
            edge head is not run; call ``self.edgeDetector`` on the result for it.
        """
        b, length, _, h, w = masked_flows.shape
        if h % 8 or w % 8:
            raise ValueError(f"flow completion needs H and W divisible by 8, got {h}x{w}")
        inputs = torch.cat([masked_flows, masks.to(masked_flows.dtype)], dim=2).transpose(1, 2)  # (B, 3, L, H, W)

        x = self.downsample(inputs)
        feat_e1 = self.encoder1(x)  # (B, 64, L, H/4, W/4)
        feat_mid = self.mid_dilation(self.encoder2(feat_e1))  # (B, 128, L, H/8, W/8)

        feat_prop = self.feat_prop_module(feat_mid.transpose(1, 2))  # (B, L, 128, H/8, W/8)
        feat_prop = feat_prop.reshape(b * length, self.feat_channels, h // 8, w // 8)

        skip = feat_e1.transpose(1, 2).reshape(b * length, -1, h // 4, w // 4)  # (B*L, 64, H/4, W/4)
        feat_d2 = self.decoder2(feat_prop) + skip
        flow = self.upsample(self.decoder1(feat_d2))  # (B*L, 2, H, W)
        return flow.reshape(b, length, 2, h, w)

    @staticmethod
    def _split_masks(flows_f: torch.Tensor, flows_b: torch.Tensor,
                     masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-flow masks: forward flow i uses frame i's mask, backward flow i frame i+1's."""
        if flows_f.shape != flows_b.shape:
            raise ValueError(f"forward {tuple(flows_f.shape)} and backward {tuple(flows_b.shape)} flows differ")
        if masks.dim() != 5 or masks.shape[1] != flows_f.shape[1] + 1 or masks.shape[2] != 1:
            raise ValueError(f"masks {tuple(masks.shape)} must be (B, T, 1, H, W) with T = "
                             f"{flows_f.shape[1] + 1} for flows {tuple(flows_f.shape)}")
        masks = masks.to(flows_f.dtype)
        return masks[:, :-1], masks[:, 1:]

    def forward_bidirect_flow(self, flows_f: torch.Tensor, flows_b: torch.Tensor,
                              masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Complete forward and backward flows inside the mask.

        The known flows are zeroed inside the mask first (forward flow i with frame
        i's mask, backward flow i with frame i+1's); the backward flows are completed
        by running the network over reversed time, so each direction's recurrence
        follows its flow's direction.

        Args:
            flows_f: (B, T-1, 2, H, W) pixels, frame i -> i+1.
            flows_b: (B, T-1, 2, H, W) pixels, frame i+1 -> i.
            masks: (B, T, 1, H, W) float {0, 1}, 1 = flow unknown.
        Returns:
            ``(pred_f, pred_b)``, each (B, T-1, 2, H, W) pixels: the network's
            prediction everywhere (use :meth:`combine_flow` to keep known flow).
        """
        mask_f, mask_b = self._split_masks(flows_f, flows_b, masks)
        pred_f = self.forward(flows_f * (1 - mask_f), mask_f)
        reversed_b = torch.flip(flows_b * (1 - mask_b), dims=[1])
        pred_b = torch.flip(self.forward(reversed_b, torch.flip(mask_b, dims=[1])), dims=[1])
        return pred_f, pred_b

    def combine_flow(self, flows_f: torch.Tensor, flows_b: torch.Tensor, pred_f: torch.Tensor,
                     pred_b: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Take the prediction inside the mask and the known flow outside it.

        Same mask frames as :meth:`forward_bidirect_flow`: frame i's mask for forward
        flow i, frame i+1's for backward flow i.

        Args:
            flows_f, flows_b: (B, T-1, 2, H, W) known flows, pixels.
            pred_f, pred_b: (B, T-1, 2, H, W) predicted flows, pixels.
            masks: (B, T, 1, H, W) float {0, 1}, 1 = flow unknown.
        Returns:
            ``(f, b)`` completed flows, each (B, T-1, 2, H, W) pixels.
        """
        mask_f, mask_b = self._split_masks(flows_f, flows_b, masks)
        out_f = pred_f * mask_f + flows_f * (1 - mask_f)
        out_b = pred_b * mask_b + flows_b * (1 - mask_b)
        return out_f, out_b
