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
            Conv3dAs2d(in_channels, out_channels, (1, kernel_size, kernel_size), stride=(1, stride, stride),
                      padding=(0, padding, padding), bias=bias),
            _leaky(0.2),
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

    To bound memory on long or large clips, set ``frames_per_chunk`` (e.g. from
    :meth:`frames_for_budget`): the per-frame and local-in-time stages then run a
    chunk of frames at a time with the same results; only the recurrence at 1/8
    scale still sees every frame at once.
    """

    feat_channels = 128

    def __init__(self) -> None:
        super().__init__()
        # None: whole clip at once; n: encoder windows of n frames (+ halo) and decoder chunks of n frames
        self.frames_per_chunk: int | None = None
        c = self.feat_channels
        # (B, 3, T, H, W) -> (B, 32, T, H/2, W/2)
        self.downsample = nn.Sequential(
            Conv3dAs2d(3, 32, (1, 5, 5), stride=(1, 2, 2), padding=(0, 2, 2), padding_mode="replicate"),
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
            mid += [Conv3dAs2d(c, c, (1, 3, 3), padding=(0, dil, dil), dilation=(1, dil, dil)), _leaky(0.2)]
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

    # -- memory-bounded chunking ---------------------------------------------------

    @property
    def encoder_modules(self) -> tuple[nn.Module, ...]:
        """The stages before the recurrence, in order; the only ones that mix frames locally."""
        return (self.downsample, self.encoder1, self.encoder2, self.mid_dilation)

    @property
    def temporal_halo(self) -> int:
        """Frames each side of a chunk that the encoder stages read (8 for the checkpoint's layout).

        Derived from the modules: every ``Conv3d`` with a length-preserving temporal
        kernel k, dilation d reaches ``d * (k - 1) / 2`` frames each way, and reaches
        add up along a chain (a residual branch reaches no further than the chain it
        skips). Here: 4 P3D blocks x one (3, 1, 1) conv dilated by 2 = 4 x 2 frames.
        A window clipped at a clip end pads exactly as the whole clip does there, so
        the padding mode does not matter. Raises ValueError for a temporal conv that
        would change the frame count.
        """
        halo = 0
        for stage in self.encoder_modules:
            for conv in stage.modules():
                if not isinstance(conv, nn.Conv3d):
                    continue
                k, d, p, s = conv.kernel_size[0], conv.dilation[0], conv.padding, conv.stride[0]
                reach = d * (k - 1) // 2
                if s != 1 or k % 2 == 0 or isinstance(p, str) or p[0] != reach:
                    raise ValueError(f"{conv} does not keep the frame count; temporal chunking would be wrong")
                halo += reach
        return halo

    # values per full-resolution pixel and frame alive at once (see ``frames_for_budget``)
    _ENCODER_VALUES_PER_PIXEL = 24
    _DECODER_VALUES_PER_PIXEL = 44
    _SEQUENCE_VALUES_PER_PIXEL = 24
    _BUDGET_MARGIN = 1.25

    @classmethod
    def frames_for_budget(cls, height: int, width: int, budget_bytes: int, dtype: torch.dtype = torch.float16,
                          num_flows: int | None = None) -> int:
        """A ``frames_per_chunk`` whose chunk activations should fit in ``budget_bytes``.

        Rough inference-mode (no autograd) estimate, counted in activation values per
        full-resolution pixel and frame, each ``dtype.itemsize`` bytes:

        - decoder chunk, per frame: ~44 (the x2-upsampled 32-channel map at full
          resolution, 32, plus its half-resolution input, 8, the output flow, 2, and
          slack for the 1/4-scale stages);
        - encoder chunk, per frame read, i.e. chunk + ``2 * temporal_halo`` frames:
          ~24 (input 3 plus its padded copy, two 32-channel maps at 1/2 scale, 8 each);
        - whole sequence, per flow, only when ``num_flows`` is given: ~24 (the 1/4-scale
          skip, 4, the 1/8-scale features and the recurrence's per-frame lists, ~10,
          the output and its chunks, 4, plus slack); this is taken off the budget first.

        Everything is multiplied by a 1.25 margin for allocator rounding and conv
        workspaces. Weights (~10 MB in fp16) are not counted. Checked against peak RSS
        on CPU (fp32, 240x432): ~44 values per extra chunk frame and ~29 per flow for
        the whole sequence, both within the margin; the unchunked run peaked at ~114
        values per pixel and flow.

        Args:
            height, width: flow size in pixels (the working resolution).
            budget_bytes: memory allowed for activations.
            dtype: activation dtype (``torch.float16`` under fp16 autocast).
            num_flows: L, if the sequence-wide tensors should come out of the budget.
        Returns:
            frames per chunk, at least 1.
        """
        value_bytes = torch.empty((), dtype=dtype).element_size()
        frame_bytes = height * width * value_bytes * cls._BUDGET_MARGIN  # bytes of one value per pixel
        budget = float(budget_bytes)
        if num_flows is not None:
            budget -= num_flows * cls._SEQUENCE_VALUES_PER_PIXEL * frame_bytes
        with torch.device("meta"):  # structure only, no weights allocated
            halo = cls().temporal_halo
        by_decoder = budget / (cls._DECODER_VALUES_PER_PIXEL * frame_bytes)
        by_encoder = budget / (cls._ENCODER_VALUES_PER_PIXEL * frame_bytes) - 2 * halo
        return max(1, int(min(by_decoder, by_encoder)))

    def _chunk_windows(self, batch: int, length: int) -> list[tuple[slice, slice, slice, slice]]:
        """Encoder windows: ``(rows, read, keep, keep_in_read)`` slices over batch and time.

        ``read`` is the chunk ``keep`` widened by the halo (clipped at the clip ends);
        ``keep_in_read`` picks the chunk's frames out of the window's output. Without
        ``frames_per_chunk``, or with one of at least ``length`` frames, one window covers every
        row and frame, as the unchunked network.
        """
        n = self.frames_per_chunk
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise ValueError(f"frames_per_chunk must be a positive int or None, got {n!r}")
        if n is None or n >= length:  # one window, all rows
            whole = slice(0, length)
            return [(slice(0, batch), whole, whole, whole)]
        halo = self.temporal_halo
        windows = []
        for row in range(batch):
            for start in range(0, length, n):
                stop = min(start + n, length)
                lo, hi = max(0, start - halo), min(length, stop + halo)
                windows.append((slice(row, row + 1), slice(lo, hi), slice(start, stop),
                                slice(start - lo, stop - lo)))
        return windows

    def _encode(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, T, H, W) -> skip (B, 64, T, H/4, W/4) and features (B, 128, T, H/8, W/8)."""
        feat_e1 = self.encoder1(self.downsample(inputs))
        return feat_e1, self.mid_dilation(self.encoder2(feat_e1))

    def _decode(self, feat_prop: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """(N, 128, H/8, W/8) propagated features + (N, 64, H/4, W/4) skip -> (N, 2, H, W) flow."""
        feat_d2 = self.decoder2(feat_prop) + skip
        return self.upsample(self.decoder1(feat_d2))

    def forward(self, masked_flows: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """Complete one direction of flows.

        With ``frames_per_chunk`` set, the encoder runs on windows of that many
        frames plus ``temporal_halo`` frames each side and the decoders on that many
        frames at a time, so activations scale with the chunk instead of L; only the
        1/4-scale skip, the 1/8-scale features and the output are kept for all
        frames. Results equal the unchunked run up to float summation order.

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
        masks = masks.to(masked_flows.dtype)

        skip = feat_mid = None  # (B, L, 64, H/4, W/4), (B, L, 128, H/8, W/8)
        for rows, read, keep, keep_in_read in self._chunk_windows(b, length):
            window = torch.cat([masked_flows[rows, read], masks[rows, read]], dim=2)  # (b', T', 3, H, W)
            e1, mid = self._encode(window.transpose(1, 2))
            e1, mid = e1.transpose(1, 2)[:, keep_in_read], mid.transpose(1, 2)[:, keep_in_read]
            if skip is None:
                skip = e1.new_empty(b, length, *e1.shape[2:])
                feat_mid = mid.new_empty(b, length, *mid.shape[2:])
            skip[rows, keep] = e1
            feat_mid[rows, keep] = mid
            del window, e1, mid

        feat_prop = self.feat_prop_module(feat_mid)  # (B, L, 128, H/8, W/8)
        del feat_mid
        feat_prop = feat_prop.reshape(b * length, self.feat_channels, h // 8, w // 8)
        skip = skip.reshape(b * length, -1, h // 4, w // 4)  # (B*L, 64, H/4, W/4)

        step = self.frames_per_chunk or b * length
        flow = None  # (B*L, 2, H, W), filled chunk by chunk (no concatenated copy)
        for i in range(0, b * length, step):
            part = self._decode(feat_prop[i:i + step], skip[i:i + step])
            if flow is None:
                flow = part.new_empty(b * length, *part.shape[1:])
            flow[i:i + step] = part
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

    def complete_direction(self, flows: torch.Tensor, masks: torch.Tensor, backward: bool = False) -> torch.Tensor:
        """One direction of :meth:`forward_bidirect_flow` followed by :meth:`combine_flow`.

        Same arithmetic, with only this direction's tensors alive (about half the memory).

        Args:
            flows: (B, L, 2, H, W) known flows, pixels (forward flows, or backward flows with ``backward``).
            masks: (B, L, 1, H, W) {0, 1} masks of these flows: frame i's for forward flow i,
                frame i+1's for backward flow i.
            backward: the recurrence runs over reversed time (backward flows).
        Returns:
            (B, L, 2, H, W) completed flows: the prediction inside the mask, ``flows`` outside.
        """
        masks = masks.to(flows.dtype)
        masked = flows * (1 - masks)
        if backward:
            pred = torch.flip(self.forward(torch.flip(masked, dims=[1]), torch.flip(masks, dims=[1])), dims=[1])
        else:
            pred = self.forward(masked, masks)
        del masked
        return pred * masks + flows * (1 - masks)

    def complete_both(self, flows_f: torch.Tensor, masks_f: torch.Tensor, flows_b: torch.Tensor,
                      masks_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`complete_direction` for both directions in one batch of twice the rows.

        The network treats batch rows independently, so this is the same arithmetic as two
        calls (up to the convolution algorithms a larger batch gets) with half the kernel
        launches and twice the activations: for small frames, where launches cost more than
        the arithmetic.

        Args:
            flows_f, flows_b: (B, L, 2, H, W) known forward / backward flows, pixels.
            masks_f, masks_b: (B, L, 1, H, W) {0, 1} their masks (frame i's / frame i+1's for flow i).
        Returns:
            ``(f, b)``: (B, L, 2, H, W) completed forward and backward flows.
        """
        rows = flows_f.shape[0]
        # the backward recurrence runs over reversed time: flipped in, flipped back out
        flows = torch.cat([flows_f, torch.flip(flows_b, dims=[1])])  # (2B, L, 2, H, W)
        masks = torch.cat([masks_f, torch.flip(masks_b, dims=[1])]).to(flows.dtype)
        pred = self.forward(flows * (1 - masks), masks)
        done = pred * masks + flows * (1 - masks)
        return done[:rows], torch.flip(done[rows:], dims=[1])

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
