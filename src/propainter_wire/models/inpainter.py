"""The ProPainter inpainting generator (checkpoint ``ProPainter.pth``).

Pipeline of one window of ``T`` frames, the first ``Tl`` of them local
(consecutive) frames, the rest sparse reference frames:

1. ``Encoder``: masked frame + two masks (5 channels) -> 128 channels at 1/4 size.
2. ``FeaturePropagation``: features of the local frames are propagated
   backward then forward along the completed flows (downsampled to 1/4, pixels
   divided by 4), aligned by flow-guided modulated deformable convolution.
3. ``SparseTransformerStack`` over the tokens of all frames
   (see :mod:`propainter_wire.models.transformer`).
4. Decoder: 1/4 size features of the local frames -> RGB in [-1, 1] (tanh).

The non-learned image propagation of the reference lives elsewhere (it has no
parameters). State-dict keys and shapes equal those of the official checkpoint.

Memory: every stage but the propagation sweeps and the attention is a per-frame
operation. ``InpaintGenerator.set_chunking(frames=..., windows=...)`` makes them
run a few frames (and the attention a few windows) at a time, which bounds the
large temporaries without changing the results beyond float summation order;
:func:`chunk_sizes_for_budget` picks both sizes from a byte budget.
"""

from __future__ import annotations

import contextlib
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..flow.warp import fb_consistency, flow_warp
from ..runtime.precision import active_autocast_dtype
from .deform import modulated_deform_conv2d
from .transformer import SoftComp, SoftSplit, SparseTransformerStack, chunked

# fill for non-finite values before deform_conv2d: finite in fp16 and far outside any feature map
_NONFINITE_FILL = 1.0e4


def _finite(x: torch.Tensor) -> torch.Tensor:
    """NaN -> 0, +-inf -> +-1e4; finite values are untouched."""
    return torch.nan_to_num(x, nan=0.0, posinf=_NONFINITE_FILL, neginf=-_NONFINITE_FILL)


def _finite_copy(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``_finite(x.to(dtype))`` with one pass less when the conversion already made a copy."""
    y = x.to(dtype)
    if y is x:
        return _finite(x)
    return y.nan_to_num_(nan=0.0, posinf=_NONFINITE_FILL, neginf=-_NONFINITE_FILL)


def _act(slope: float) -> nn.LeakyReLU:
    return nn.LeakyReLU(slope, inplace=True)


# ---------------------------------------------------------------------------
# encoder / decoder
# ---------------------------------------------------------------------------
class Encoder(nn.Module):
    """(N, 5, H, W) -> (N, 128, H/4, W/4).

    A plain stem (two stride-2 convolutions) gives 256 channels; four grouped
    convolutions follow, each fed its predecessor's output interleaved, group by
    group, with the stem features. ``layers`` alternates convolutions (even
    indices, the checkpoint's keys) and LeakyReLU(0.2).
    """

    # (groups of the interleave and of the convolution) for layers 10, 12, 14, 16
    fusion_groups = (2, 4, 8, 1)

    def __init__(self) -> None:
        super().__init__()
        specs = [  # (in, out, stride, groups)
            (5, 64, 2, 1), (64, 64, 1, 1), (64, 128, 2, 1), (128, 256, 1, 1), (256, 384, 1, 1),
            (640, 512, 1, 2), (768, 384, 1, 4), (640, 256, 1, 8), (512, 128, 1, 1),
        ]
        layers: list[nn.Module] = []
        for c_in, c_out, stride, groups in specs:
            layers += [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, groups=groups), _act(0.2)]
        self.layers = nn.ModuleList(layers)

    @staticmethod
    def _interleave(stem: torch.Tensor, feat: torch.Tensor, groups: int) -> torch.Tensor:
        """Concatenate per group: [stem_g0, feat_g0, stem_g1, feat_g1, ...] along channels."""
        n, _, h, w = stem.shape
        return torch.cat([stem.view(n, groups, -1, h, w), feat.view(n, groups, -1, h, w)], 2).view(n, -1, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers[:8]:
            x = layer(x)
        stem = x  # (N, 256, H/4, W/4)
        feat = self.layers[9](self.layers[8](stem))
        for i, groups in enumerate(self.fusion_groups):
            conv, act = self.layers[10 + 2 * i], self.layers[11 + 2 * i]
            feat = act(conv(self._interleave(stem, feat, groups)))
        return feat


class UpConv(nn.Module):
    """2x bilinear upsampling (align_corners=True) then a 3x3 convolution."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True))


def build_decoder(channel: int = 128) -> nn.Sequential:
    """(N, 128, h, w) features -> (N, 3, 4h, 4w) pre-tanh RGB."""
    return nn.Sequential(
        UpConv(channel, 128), _act(0.2),
        nn.Conv2d(128, 64, kernel_size=3, stride=1, padding=1), _act(0.2),
        UpConv(64, 64), _act(0.2),
        nn.Conv2d(64, 3, kernel_size=3, stride=1, padding=1),
    )


# ---------------------------------------------------------------------------
# learned feature propagation
# ---------------------------------------------------------------------------
class DeformableAlignment(nn.Module):
    """Flow-guided modulated deformable 3x3 convolution (second-order alignment).

    Offsets are the flow (pixels at feature scale, as (dy, dx) per sampling point)
    plus a learned residual bounded by ``max_residue_magnitude``; modulation masks
    are learned too. Both are predicted by ``conv_offset`` from a condition map.

    Args:
        channels: feature channels in and out (128).
        deform_groups: offset groups (16).
        max_residue_magnitude: bound of the learned residual offset, pixels (3).
    """

    def __init__(self, channels: int = 128, deform_groups: int = 16, max_residue_magnitude: float = 3.0) -> None:
        super().__init__()
        self.max_residue_magnitude = max_residue_magnitude
        self.weight = nn.Parameter(torch.empty(channels, channels, 3, 3))
        self.bias = nn.Parameter(torch.zeros(channels))
        # condition: current, warped, flow (2), flow validity (1), masks (2)
        cond_channels = 2 * channels + 2 + 1 + 2
        self.conv_offset = nn.Sequential(
            nn.Conv2d(cond_channels, channels, 3, 1, 1), _act(0.1),
            nn.Conv2d(channels, channels, 3, 1, 1), _act(0.1),
            nn.Conv2d(channels, channels, 3, 1, 1), _act(0.1),
            nn.Conv2d(channels, 3 * 9 * deform_groups, 3, 1, 1),
        )
        bound = 1.0 / math.sqrt(channels * 9)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.zeros_(self.conv_offset[-1].weight)
        nn.init.zeros_(self.conv_offset[-1].bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
        """Align.

        Args:
            x: (N, C, h, w) features to align (the previous step's propagated features).
            cond: (N, 2C+5, h, w) condition map.
            flow: (N, 2, h, w) flow (x, y) in feature pixels from the current frame to ``x``'s frame.
        Returns:
            (N, C, h, w) in ``x``'s dtype (computed in fp32 for fp16/bf16 inputs).
        """
        pred = self.conv_offset(cond)  # (N, 3G, h, w): G residual dy/dx values twice over, G modulations
        n, _, h, w = pred.shape
        count = pred.shape[1] // 3
        # one dtype for all operands: fp32 for reduced precision (bf16 has no kernel), as torchvision's
        # autocast rule for this op does, except fp16 features on a GPU, which stay fp16 (the
        # reference's --fp16 runs this op in half too; its kernel has a half form)
        work = torch.float64 if x.dtype == torch.float64 else torch.float32
        if x.dtype == torch.float16 and x.device.type == "cuda":
            work = torch.float16
        # offsets (N, 2G, h, w): (dy, dx) pairs, one per group and kernel tap, = bounded residual + the
        # flow (y, x); formed in place on one work-dtype copy (the residual halves are adjacent channels)
        offset = torch.tanh(pred[:, :2 * count].to(work)).mul_(self.max_residue_magnitude)
        offset.view(n, count, 2, h, w).add_(flow.flip(1).to(work).unsqueeze(1))
        # (on a GPU outside autocast, whose rule for this op would cast everything to fp32)
        with torch.autocast("cuda", enabled=False) if x.device.type == "cuda" else contextlib.nullcontext():
            aligned = modulated_deform_conv2d(
                _finite_copy(x, work), offset.nan_to_num_(0.0, _NONFINITE_FILL, -_NONFINITE_FILL),
                self.weight.to(work), self.bias.to(work),
                _finite_copy(torch.sigmoid(pred[:, 2 * count:]), work), stride=1, padding=1, dilation=1,
            )
        return aligned.to(x.dtype)


class FeaturePropagation(nn.Module):
    """Learned bidirectional propagation of features (``learnable=True`` in the reference).

    A backward sweep (last frame to first) and then a forward sweep over the
    backward results; each step aligns the running feature to the current frame
    and refines it with a residual block; ``fuse`` merges both sweeps.
    """

    directions = ("backward_1", "forward_1")

    def __init__(self, channel: int = 128) -> None:
        super().__init__()
        self.channel = channel
        self.deform_align = nn.ModuleDict({d: DeformableAlignment(channel) for d in self.directions})
        self.backbone = nn.ModuleDict({d: self._residual(channel) for d in self.directions})
        self.fuse = self._residual(channel)

    @staticmethod
    def _residual(channel: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(2 * channel + 2, channel, 3, 1, 1), _act(0.2),
            nn.Conv2d(channel, channel, 3, 1, 1),
        )

    def _sweep(self, direction: str, feats: list[torch.Tensor], masks: torch.Tensor, flows_prop: torch.Tensor,
               flows_check: torch.Tensor, interpolation: str) -> list[torch.Tensor]:
        """One direction; returns per-frame features in frame order."""
        t = len(feats)
        backward = direction.startswith("backward")
        order = range(t - 1, -1, -1) if backward else range(t)
        out: list[torch.Tensor] = [feats[0]] * t
        running = feats[order[0]]
        for step, idx in enumerate(order):
            current, mask = feats[idx], masks[:, idx]
            if step > 0:
                # flow from frame idx towards the frame propagated from
                k = idx if backward else idx - 1
                flow, check = flows_prop[:, k], flows_check[:, k]
                valid = fb_consistency(flow, check)
                warped = flow_warp(running.float(), flow.float(), interpolation).to(running.dtype)
                cond = torch.cat([current, warped, flow, valid, mask], dim=1)
                running = self.deform_align[direction](running, cond, flow)
            running = running + self.backbone[direction](torch.cat([current, running, mask], dim=1))
            out[idx] = running
        return out

    def forward(self, x: torch.Tensor, flows_forward: torch.Tensor, flows_backward: torch.Tensor,
                masks: torch.Tensor, interpolation: str = "bilinear",
                frames_per_chunk: int | None = None) -> torch.Tensor:
        """Propagate.

        Args:
            x: (B, T, C, h, w) features.
            flows_forward: (B, T-1, 2, h, w) flow t -> t+1, pixels at this scale.
            flows_backward: (B, T-1, 2, h, w) flow t+1 -> t.
            masks: (B, T, 2, h, w) 0/1 (input mask, mask after image propagation).
            interpolation: feature warping mode.
            frames_per_chunk: frames per chunk of the final (per-frame) fusion; None: all.
        Returns:
            (B, T, C, h, w) fused features (residual on ``x``).
        """
        b, t, c, h, w = x.shape
        feats = list(x.unbind(1))
        back = self._sweep("backward_1", feats, masks, flows_forward, flows_backward, interpolation)
        fwd = self._sweep("forward_1", back, masks, flows_backward, flows_forward, interpolation)
        stacked = torch.cat([torch.stack(back, 1), torch.stack(fwd, 1), masks], dim=2).view(b * t, -1, h, w)
        fused = chunked(lambda both, feat: self.fuse(both) + feat, stacked, x.reshape(b * t, c, h, w),
                        chunk=frames_per_chunk)
        return fused.view(b, t, c, h, w)


# ---------------------------------------------------------------------------
# generator
# ---------------------------------------------------------------------------
class InpaintGenerator(nn.Module):
    """ProPainter's generator (inference path).

    Frame sizes must be multiples of 4 (the reference feeds multiples of 8).
    The model behaves the same in train and eval mode: it always returns the
    local frames only (the reference's training branch is not ported).

    Attributes:
        frames_per_chunk: frames (counted over ``B*T``) that the per-frame stages
            (encoder, propagation fusion, SoftSplit, feed-forwards, SoftComp,
            decoder) process at once; None: all frames in one go.
        windows_per_chunk: attention windows gathered at once, masked and unmasked
            windows separately; None: all in one go.
    Both only bound memory (see :meth:`set_chunking`, :func:`chunk_sizes_for_budget`).
    """

    channel = 128
    hidden = 512
    patch = {"kernel_size": (7, 7), "stride": (3, 3), "padding": (3, 3)}
    window = (5, 9)  # attention window on the token grid (rows, cols)
    pool = (4, 4)  # pooling of the global tokens

    def __init__(self) -> None:
        super().__init__()
        self.frames_per_chunk: int | None = None
        self.windows_per_chunk: int | None = None
        self.encoder = Encoder()
        self.decoder = build_decoder(self.channel)
        self.ss = SoftSplit(self.channel, self.hidden, **self.patch)
        self.sc = SoftComp(self.channel, self.hidden, **self.patch)
        self.feat_prop_module = FeaturePropagation(self.channel)
        self.transformers = SparseTransformerStack(
            dim=self.hidden, n_head=4, window_size=self.window, pool_size=self.pool, depths=8, **self.patch)

    def set_chunking(self, frames: int | None = None, windows: int | None = None) -> InpaintGenerator:
        """Bound memory: per-frame stages take ``frames`` frames at a time, attention ``windows`` windows.

        None restores the one-go behaviour. Results equal the unchunked ones up to
        float summation order. Returns ``self``.
        """
        for name, value in (("frames", frames), ("windows", windows)):
            if value is not None and (isinstance(value, bool) or int(value) != value or value < 1):
                raise ValueError(f"{name} per chunk must be a positive integer or None, got {value!r}")
        self.frames_per_chunk = None if frames is None else int(frames)
        self.windows_per_chunk = None if windows is None else int(windows)
        return self

    def encode(self, masked_frames: torch.Tensor, masks_in: torch.Tensor,
               masks_updated: torch.Tensor) -> torch.Tensor:
        """Per-frame encoder features (independent across frames, so they may be cached).

        Args:
            masked_frames: (B, T, 3, H, W) in [-1, 1].
            masks_in: (B, T, 1, H, W) 0/1 dilated masks.
            masks_updated: (B, T, 1, H, W) 0/1 masks after image propagation.
        Returns:
            (B, T, 128, H/4, W/4).
        """
        b, t, _, height, width = masked_frames.shape
        dtype = masked_frames.dtype
        feat = chunked(lambda frames, m_in, m_upd: self.encoder(torch.cat([frames, m_in, m_upd], dim=1)),
                       masked_frames.reshape(b * t, 3, height, width),
                       masks_in.reshape(b * t, 1, height, width).to(dtype),
                       masks_updated.reshape(b * t, 1, height, width).to(dtype),
                       chunk=self.frames_per_chunk)  # (B*T, 128, H/4, W/4)
        return feat.view(b, t, *feat.shape[1:])

    def forward(self, masked_frames: torch.Tensor, flows_f: torch.Tensor, flows_b: torch.Tensor,
                masks_in: torch.Tensor, masks_updated: torch.Tensor, num_local_frames: int,
                interpolation: str = "bilinear", t_dilation: int = 2) -> torch.Tensor:
        """Inpaint the local frames of one window.

        Args:
            masked_frames: (B, T, 3, H, W) in [-1, 1], frames after image propagation;
                the first ``num_local_frames`` are local, the rest reference frames.
            flows_f: (B, Tl-1, 2, H, W) completed forward flows (t -> t+1), pixels at full size.
            flows_b: (B, Tl-1, 2, H, W) completed backward flows (t+1 -> t).
            masks_in: (B, T, 1, H, W) float 0/1 dilated masks.
            masks_updated: (B, T, 1, H, W) float 0/1 masks after image propagation.
            num_local_frames: Tl.
            interpolation: feature warping mode of the propagation.
            t_dilation: temporal key stride of the transformer.
        Returns:
            (B, Tl, 3, H, W) in [-1, 1].
        """
        feats = self.encode(masked_frames, masks_in, masks_updated)
        return self.forward_features(feats, flows_f, flows_b, masks_in, masks_updated, num_local_frames,
                                     interpolation, t_dilation)

    def forward_features(self, feats: torch.Tensor, flows_f: torch.Tensor, flows_b: torch.Tensor,
                         masks_in: torch.Tensor, masks_updated: torch.Tensor, num_local_frames: int,
                         interpolation: str = "bilinear", t_dilation: int = 2) -> torch.Tensor:
        """``forward`` after the encoder: ``feats`` (B, T, 128, H/4, W/4) from :meth:`encode`.

        The other arguments and the result are those of :meth:`forward`. Only the
        local frames are composed back and decoded (the others are not returned).
        """
        b, t, c, h, w = feats.shape
        height, width = masks_in.shape[-2:]
        masks_in = masks_in if masks_in.is_floating_point() else masks_in.float()
        masks_updated = masks_updated if masks_updated.is_floating_point() else masks_updated.float()
        n_local = int(num_local_frames)
        if height % 4 or width % 4 or (h, w) != (height // 4, width // 4):
            raise ValueError(f"frame size {height}x{width} must be a multiple of 4 matching features {h}x{w}")
        if not 1 <= n_local <= t:
            raise ValueError(f"num_local_frames {n_local} outside 1..{t}")
        expected = (b, n_local - 1, 2, height, width)
        if tuple(flows_f.shape) != expected or tuple(flows_b.shape) != expected:
            raise ValueError(f"flows {tuple(flows_f.shape)}, {tuple(flows_b.shape)} should be {expected}")

        # flows and masks at feature scale (1/4): flow vectors shrink with the grid
        flows_f_q = self._quarter_flow(flows_f)
        flows_b_q = self._quarter_flow(flows_b)
        mask_in_q = F.interpolate(masks_in[:, :n_local].reshape(-1, 1, height, width), scale_factor=0.25,
                                  mode="nearest").view(b, n_local, 1, h, w)
        mask_upd_q = F.interpolate(masks_updated[:, :n_local].reshape(-1, 1, height, width), scale_factor=0.25,
                                   mode="nearest").view(b, n_local, 1, h, w)

        # token mask of the local frames: does a token's 7x7 patch touch the mask
        token_mask = F.max_pool2d(mask_in_q.view(-1, 1, h, w), **self.patch)
        token_mask = token_mask.view(b, n_local, *token_mask.shape[-2:], 1)  # (B, Tl, Ht, Wt, 1)

        per_frame, per_window = self.frames_per_chunk, self.windows_per_chunk
        local = self.feat_prop_module(feats[:, :n_local], flows_f_q, flows_b_q,
                                      torch.cat([mask_in_q, mask_upd_q], dim=2), interpolation,
                                      frames_per_chunk=per_frame)
        feats = torch.cat([local, feats[:, n_local:].to(local.dtype)], dim=1)  # (B, T, C, h, w)

        tokens = self.ss(feats.reshape(b * t, c, h, w), b, (h, w), frames_per_chunk=per_frame)
        tokens = self.transformers(tokens, (h, w), token_mask, t_dilation=t_dilation,
                                   frames_per_chunk=per_frame, windows_per_chunk=per_window)  # (B, T, Ht, Wt, 512)
        # only the local frames are decoded: compose back just those (SoftComp is per frame)
        local = local + self.sc(tokens[:, :n_local], (h, w), frames_per_chunk=per_frame).view(b, n_local, c, h, w)

        decoder_in = local.reshape(b * n_local, c, h, w)
        half = active_autocast_dtype(decoder_in.device.type)
        if half is not None:  # the decoder's upsampling in the autocast dtype too (as the reference's --fp16):
            decoder_in = decoder_in.to(half)  # else its full-size maps stay float32, twice the memory and passes
        out = chunked(lambda x: torch.tanh(self.decoder(x)), decoder_in, chunk=per_frame)  # (B*Tl, 3, H, W)
        return out.view(b, n_local, 3, height, width)

    @staticmethod
    def _quarter_flow(flows: torch.Tensor) -> torch.Tensor:
        """(B, N, 2, H, W) pixels -> (B, N, 2, H/4, W/4) pixels at 1/4 scale."""
        b, n, _, height, width = flows.shape
        if n == 0:
            return flows.new_zeros(b, 0, 2, height // 4, width // 4)
        small = F.interpolate(flows.reshape(-1, 2, height, width), scale_factor=0.25, mode="bilinear",
                              align_corners=False)
        return small.view(b, n, 2, height // 4, width // 4) / 4.0


# ---------------------------------------------------------------------------
# chunk sizes from a memory budget
# ---------------------------------------------------------------------------
def chunk_sizes_for_budget(budget_bytes: int, frame_size: tuple[int, int], num_frames: int,
                           element_size: int = 2) -> tuple[int, int]:
    """Frames and windows per chunk whose temporaries fit in about ``budget_bytes`` each.

    Args:
        budget_bytes: bytes allowed for the temporaries of one chunk.
        frame_size: (H, W) of the frames in pixels (multiples of 4).
        num_frames: T, frames of the window (local + reference).
        element_size: bytes per activation element: 2 under fp16/bf16 autocast, 4 in fp32.
    Returns:
        (frames_per_chunk, windows_per_chunk) for :meth:`InpaintGenerator.set_chunking`, each >= 1.

    Estimate, in elements, for feature maps of h x w = H/4 x W/4 and L = Ht*Wt tokens
    of 512 channels (a frame chunk and a window chunk are never alive together):

    - per frame, the largest of
      SoftSplit / SoftComp: the (6272, L) patch matrix and one transposed copy, 2 * 6272 * L;
      feed-forward: about four (L, 1960) hidden tensors, 4 * 1960 * L;
      decoder: input and output of the last full-size 64-channel convolution, 2 * 64 * H * W.
    - per masked window (the largest kind): keys and values of T key frames (t_dilation 1,
      the worst case), each gathered, pooled part indexed and concatenated,
      4 * T * (S + P) * 512 with S = 45 own + 148 rolled tokens and P pooled tokens, plus
      the window's queries, results and their scattered copy, 3 * T * 45 * 512.
      This assumes a fused attention kernel (flash / memory-efficient, as CUDA picks
      for fp16 / bf16); the math fallback also holds a (4, T*45, T*(S+P)) score matrix.

    Not counted: what chunking does not shrink (feature maps and the token grid with its
    queries, keys and values, about 7 tensors of T * L * 512 elements).
    """
    if budget_bytes <= 0 or num_frames < 1:
        raise ValueError(f"need a positive budget and frame count, got {budget_bytes} bytes, {num_frames} frames")
    height, width = frame_size
    h, w = height // 4, width // 4
    stride, kernel = InpaintGenerator.patch["stride"], InpaintGenerator.patch["kernel_size"]
    grid_h, grid_w = (h - 1) // stride[0] + 1, (w - 1) // stride[1] + 1  # padding 3 keeps ceil(n / 3) tokens
    tokens = grid_h * grid_w
    patch_width = InpaintGenerator.channel * math.prod(kernel)  # 6272
    per_frame = max(2 * patch_width * tokens, 4 * 1960 * tokens, 2 * 64 * height * width)

    wh, ww = InpaintGenerator.window
    own = wh * ww
    near = own + 4 * own - 4 * (wh // 2) * (ww // 2)  # own + rolled (each rolled copy drops one quadrant)
    rows, cols = math.ceil(grid_h / wh), math.ceil(grid_w / ww)
    pooled = (rows * wh // InpaintGenerator.pool[0]) * (cols * ww // InpaintGenerator.pool[1])
    per_window = (4 * num_frames * (near + pooled) + 3 * num_frames * own) * InpaintGenerator.hidden

    frames = max(1, int(budget_bytes // (per_frame * element_size)))
    windows = max(1, int(budget_bytes // (per_window * element_size)))
    return frames, windows
