"""RAFT optical flow ('things' configuration), checkpoint-compatible with ``raft-things.pth``.

Teed & Deng, "RAFT: Recurrent All-Pairs Field Transforms for Optical Flow",
ECCV 2020, as bundled with ProPainter. Only the full-size model is provided:
256-d instance-normalised feature encoder ``fnet``, batch-normalised context
encoder ``cnet`` (128 hidden + 128 context channels), 4 correlation levels of
radius 4 and the basic update block with convex 8x upsampling.

Images enter in [-1, 1] (ProPainter feeds its frames scaled that way and the
network uses them as they come). Flows are (N, 2, H, W) in pixels of the input
resolution, channel 0 = x (right), channel 1 = y (down); the flow of image 1
towards image 2 says where each image-1 pixel is found in image 2.

Sizes: the reference needs H and W multiples of 8 and returns NaN when the
coarsest correlation level is a single pixel high or wide. Here inputs are
replicate-padded when (and only when) needed and the flow is cropped back.

Parts: the encoders in :mod:`.raft_encoder`, the update block in :mod:`.raft_update`, the GPU's fused
convolution epilogues in :mod:`.fused_conv`; the correlation volumes and lookups in :mod:`.corr`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..runtime.cuda_graph import GraphCache
from ..tuning import FUSED_EPILOGUE_MODES
from .corr import DEFAULT_CORR_BUDGET_BYTES, CorrFn, all_pairs_bytes, build_corr, choose_corr_mode
from .raft_encoder import BasicEncoder, ResidualBlock
from .raft_update import (
    CONTEXT_DIM,
    CORR_LEVELS,
    CORR_RADIUS,
    DOWNSAMPLE,
    HIDDEN_DIM,
    BasicUpdateBlock,
    memory_format_of,
)

FEATURE_DIM = 256


def coords_grid(batch: int, height: int, width: int, device: torch.device) -> torch.Tensor:
    """(batch, 2, height, width) float32 pixel coordinates, channel 0 = x, channel 1 = y."""
    ys, xs = torch.meshgrid(torch.arange(height, device=device), torch.arange(width, device=device), indexing="ij")
    return torch.stack((xs, ys)).float().unsqueeze(0).expand(batch, 2, height, width).contiguous()


def convex_upsample(flow: torch.Tensor, mask: torch.Tensor, factor: int = DOWNSAMPLE) -> torch.Tensor:
    """Upsample flow by a learned convex combination of each pixel's 3x3 neighbourhood.

    Args:
        flow: (N, 2, h, w) pixels at 1/factor scale.
        mask: (N, 9*factor*factor, h, w) logits.
    Returns:
        (N, 2, factor*h, factor*w) pixels at full scale, float32.
    """
    n, _, h, w = flow.shape
    weights = torch.softmax(mask.float().reshape(n, 1, 9, factor, factor, h, w), dim=2)
    neighbours = F.unfold(factor * flow.float(), (3, 3), padding=1).view(n, 2, 9, 1, 1, h, w)
    fine = (weights * neighbours).sum(dim=2)  # (N, 2, factor [dy], factor [dx], h, w)
    return fine.permute(0, 1, 4, 2, 5, 3).reshape(n, 2, factor * h, factor * w)


@dataclass(frozen=True)
class _Padding:
    """Replicate padding that makes a size acceptable to RAFT, and the crop that undoes it."""

    top: int = 0
    bottom: int = 0
    left: int = 0
    right: int = 0

    @classmethod
    def for_size(cls, height: int, width: int, levels: int = CORR_LEVELS) -> _Padding:
        # multiples of 8, and the coarsest pyramid level (1/8 then levels-1 halvings) >= 2 pixels
        least = DOWNSAMPLE * 2**levels

        def split(size: int) -> tuple[int, int]:
            target = max(-(-size // DOWNSAMPLE) * DOWNSAMPLE, least)
            extra = target - size
            return extra // 2, extra - extra // 2

        top, bottom = split(height)
        left, right = split(width)
        return cls(top, bottom, left, right)

    @property
    def needed(self) -> bool:
        return any((self.top, self.bottom, self.left, self.right))

    def pad(self, images: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, C, H + top + bottom, W + left + right)."""
        if not self.needed:
            return images
        return F.pad(images, (self.left, self.right, self.top, self.bottom), mode="replicate")

    def crop(self, flow: torch.Tensor) -> torch.Tensor:
        """(N, 2, H_padded, W_padded) -> (N, 2, H, W)."""
        if not self.needed:
            return flow
        h, w = flow.shape[-2:]
        return flow[..., self.top:h - self.bottom, self.left:w - self.right]


class RAFT(nn.Module):
    """RAFT 'things' model. Load weights with ``propainter_wire.weights.load_raft``.

    Args:
        corr_budget_bytes: memory allowed for all-pairs correlation volumes; with
            ``corr='auto'`` larger problems use the on-demand local correlation.
    """

    def __init__(self, corr_budget_bytes: int = DEFAULT_CORR_BUDGET_BYTES):
        super().__init__()
        self.hidden_dim = HIDDEN_DIM
        self.context_dim = CONTEXT_DIM
        self.corr_levels = CORR_LEVELS
        self.corr_radius = CORR_RADIUS
        self.corr_budget_bytes = corr_budget_bytes
        self.fnet = BasicEncoder(output_dim=FEATURE_DIM, norm="instance")
        self.cnet = BasicEncoder(output_dim=HIDDEN_DIM + CONTEXT_DIM, norm="batch")
        self.update_block = BasicUpdateBlock(HIDDEN_DIM, CONTEXT_DIM)

    def use_fused_epilogues(self, mode: str = "1") -> None:
        """Which convolutions take their bias, batch norm and ReLU inside cuDNN's kernels on a GPU in half
        precision (see :func:`conv_relu`): ``"1"`` the update block's and the context encoder's (the
        default), ``"update"`` the update block's only, ``"0"`` none (the library layers). The values of
        the tuning switch ``fused_epilogues`` (docs/tuning.md)."""
        if mode not in FUSED_EPILOGUE_MODES:
            raise ValueError(f"fused epilogue mode must be one of {FUSED_EPILOGUE_MODES}, got {mode!r}")
        for module in self.modules():
            if hasattr(module, "fused_epilogues"):
                in_encoder = isinstance(module, (BasicEncoder, ResidualBlock))
                module.fused_epilogues = mode == "1" or (mode == "update" and not in_encoder)

    def encode_features(self, images: torch.Tensor) -> torch.Tensor:
        """images (N, 3, H, W) in [-1, 1], H and W multiples of 8 -> features (N, 256, H/8, W/8).

        float32, or the autocast dtype under autocast (the correlations compute in float32
        from these values; half-valued features let the GPU volume use exact TF32 products).
        """
        return self.fnet(images)

    def encode_context(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """images (N, 3, H, W) in [-1, 1] -> initial hidden state (N, 128, H/8, W/8) in (-1, 1)
        and context (N, 128, H/8, W/8) >= 0 (in the autocast dtype when autocast is on)."""
        hidden, context = self.cnet(images).split((self.hidden_dim, self.context_dim), dim=1)
        return torch.tanh(hidden), torch.relu(context)

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-frame encodings: (features, hidden, context) as in the two methods above."""
        return (self.encode_features(images), *self.encode_context(images))

    def refine(self, corr_fn: CorrFn, hidden: torch.Tensor, context: torch.Tensor, iters: int) -> torch.Tensor:
        """Run the recurrent updates from zero flow.

        Args:
            corr_fn: correlation lookup, (N, 2, h, w) positions -> (N, 324, h, w).
            hidden, context: (N, 128, h, w) from :meth:`encode` of the first image of each pair.
            iters: number of updates (>= 1).
        Returns:
            (N, 2, 8h, 8w) float32 flow in pixels at input scale (the convex-upsampled last estimate).
        """
        if iters < 1:
            raise ValueError(f"iters must be >= 1, got {iters}")
        n, _, h, w = hidden.shape
        # the recurrent state in the memory format of the update block's convolutions (NHWC when their
        # weights are channels-last: cuDNN then reorders nothing between the 20 steps)
        layout = memory_format_of(self.update_block.encoder.convc2.weight)
        hidden, context = hidden.contiguous(memory_format=layout), context.contiguous(memory_format=layout)
        start = coords_grid(n, h, w, hidden.device).contiguous(memory_format=layout)  # (N, 2, h, w)
        target = start.clone()
        mask = None
        prepared = self.update_block.gru.prepare(context)  # the context's share of the GRU, once
        for step in range(iters):
            target = target.detach()
            corr = corr_fn(target)  # (N, 324, h, w) fp32
            hidden, mask, delta = self.update_block(hidden, prepared, corr, target - start,
                                                    with_mask=step == iters - 1)
            target = target + delta.float()
        return convex_upsample(target - start, mask)

    def forward(self, image1: torch.Tensor, image2: torch.Tensor, iters: int = 20, corr: str = "auto") -> torch.Tensor:
        """Flow from image1 to image2.

        Args:
            image1, image2: (N, 3, H, W) in [-1, 1], any H, W >= 1.
            iters: refinement iterations (ProPainter uses 20).
            corr: 'auto' (by ``corr_budget_bytes``), 'all_pairs' or 'local'.
        Returns:
            (N, 2, H, W) float32 flow in pixels of the input resolution.
        """
        padding = _Padding.for_size(*image1.shape[-2:], levels=self.corr_levels)
        image1, image2 = padding.pad(image1.contiguous()), padding.pad(image2.contiguous())
        fmap1, fmap2 = self.encode_features(torch.cat((image1, image2))).chunk(2)  # 2 x (N, 256, h, w)
        hidden, context = self.encode_context(image1)  # 2 x (N, 128, h, w)
        corr_fn = build_corr(fmap1, fmap2, corr, self.corr_levels, self.corr_radius,
                             budget_bytes=self.corr_budget_bytes)
        return padding.crop(self.refine(corr_fn, hidden, context, iters))


# rough float count per feature-map pixel of the activations of one pair direction
_ACTIVATION_FLOATS_PER_PIXEL = 4096


def _pairs_per_chunk(height: int, width: int, mode: str, budget_bytes: int, pairs: int,
                     volumes_per_pair: int = 2, dtype: torch.dtype = torch.float32) -> int:
    """Pairs refined together: their activations (both directions) and the all-pairs
    pyramids alive at once (``volumes_per_pair`` per pair) fit ``budget_bytes``."""
    per_pair = 2 * 4 * _ACTIVATION_FLOATS_PER_PIXEL * height * width
    if mode == "all_pairs":
        per_pair += volumes_per_pair * all_pairs_bytes(height, width, CORR_LEVELS, dtype)
    return max(1, min(pairs, budget_bytes // per_pair))


@torch.no_grad()
def bidirectional_flows(raft: RAFT, frames: torch.Tensor, iters: int = 20, corr: str = "auto",
                        budget_bytes: int | None = None, pairs_per_chunk: int | None = None,
                        corr_dtype: torch.dtype = torch.float32,
                        graphs: GraphCache | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward and backward flows between consecutive frames (ProPainter's RAFT_bi).

    Each frame is encoded once. When both directions' all-pairs pyramids of a pair
    fit the budget, they are refined together and share one volume (the backward one
    is its transpose); when only one fits, the directions are refined one after the
    other, each with its own volume; when none fits, the on-demand local correlation
    is used. Frames are processed in chunks of consecutive pairs to bound memory.

    Args:
        raft: the network (eval mode).
        frames: (T, 3, H, W) in [-1, 1], T >= 2, any H, W.
        iters: refinement iterations.
        corr: 'auto', 'all_pairs' or 'local'.
        budget_bytes: memory for correlation volumes and activations per chunk
            (default ``raft.corr_budget_bytes``).
        pairs_per_chunk: override the number of pairs processed together.
        corr_dtype: storage of the all-pairs pyramids (fp32 = the reference).
        graphs: replay each chunk's refinement as a CUDA graph from this cache (GPU,
            all-pairs correlation); keep one cache across calls of a clip.
    Returns:
        flows_f (T-1, 2, H, W): flow t -> t+1; flows_b (T-1, 2, H, W): flow t+1 -> t;
        float32 pixels at input resolution, on ``frames.device``.
    """
    if frames.ndim != 4 or frames.shape[1] != 3:
        raise ValueError(f"frames must be (T, 3, H, W), got {tuple(frames.shape)}")
    total = frames.shape[0]
    if total < 2:
        raise ValueError("need at least two frames for flow")
    budget = raft.corr_budget_bytes if budget_bytes is None else budget_bytes
    height, width = frames.shape[-2:]
    padding = _Padding.for_size(height, width, levels=raft.corr_levels)
    feat_h = (height + padding.top + padding.bottom) // DOWNSAMPLE
    feat_w = (width + padding.left + padding.right) // DOWNSAMPLE
    mode = choose_corr_mode(corr, feat_h, feat_w, 2, budget, raft.corr_levels, corr_dtype)
    together = True  # both directions of a pair in one batch
    if mode == "local" and corr == "auto" and choose_corr_mode(corr, feat_h, feat_w, 1, budget, raft.corr_levels,
                                                               corr_dtype) == "all_pairs":
        mode, together = "all_pairs", False
    volumes = 2 if together else 1
    chunk = pairs_per_chunk or _pairs_per_chunk(feat_h, feat_w, mode, budget, total - 1, volumes, corr_dtype)
    if mode == "all_pairs":  # keep every chunk's volumes inside the budget where possible
        pyramid = all_pairs_bytes(feat_h, feat_w, raft.corr_levels, corr_dtype)
        chunk = min(chunk, max(1, budget // (volumes * pyramid)))

    flows_f = torch.empty(total - 1, 2, height, width, dtype=torch.float32, device=frames.device)
    flows_b = torch.empty_like(flows_f)

    def refine_chunk(features: torch.Tensor, hidden: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """Encodings of K+1 frames -> (2K, 2, Hp, Wp) flows of their K pairs, forward then backward."""
        # the local lookup gathers fp16 features when RAFT runs in fp16 (its features are fp16 values)
        local_dtype = torch.float16 if hidden.dtype == torch.float16 else torch.float32
        if together:  # one block of both directions, sharing one volume
            corr_fn = build_corr(features[:-1], features[1:], mode, raft.corr_levels, raft.corr_radius,
                                 pairs=True, budget_bytes=budget, dtype=corr_dtype, local_dtype=local_dtype)
            return raft.refine(corr_fn, torch.cat((hidden[:-1], hidden[1:])),
                               torch.cat((context[:-1], context[1:])), iters)
        flows = []
        for src, dst in ((slice(None, -1), slice(1, None)), (slice(1, None), slice(None, -1))):
            corr_fn = build_corr(features[src], features[dst], mode, raft.corr_levels, raft.corr_radius,
                                 budget_bytes=budget, dtype=corr_dtype, local_dtype=local_dtype)
            flows.append(raft.refine(corr_fn, hidden[src], context[src], iters))
            del corr_fn  # one direction's volume alive at a time
        return torch.cat(flows)

    carried = None  # encodings of the frame shared with the previous chunk
    for first in range(0, total - 1, chunk):
        last = min(total - 1, first + chunk)  # pairs first..last-1 use frames first..last
        fresh_from = first if carried is None else first + 1
        features, hidden, context = raft.encode(padding.pad(frames[fresh_from:last + 1].contiguous()))
        if carried is not None:
            features, hidden, context = (torch.cat((c[None], x)) for c, x in zip(carried, (features, hidden, context),
                                                                                  strict=True))
        carried = (features[-1], hidden[-1], context[-1])
        pairs = last - first
        if graphs is not None and mode == "all_pairs":
            key = ("raft", tuple(features.shape), hidden.dtype, together, iters, corr_dtype)
            flow = graphs.run(key, refine_chunk, features, hidden, context)
        else:
            flow = refine_chunk(features, hidden, context)
        flow = padding.crop(flow)  # (2*pairs, 2, H, W)
        flows_f[first:last] = flow[:pairs]
        flows_b[first:last] = flow[pairs:]
    return flows_f, flows_b
