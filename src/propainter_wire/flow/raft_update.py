"""RAFT's recurrent update block: motion encoder, separable convolutional GRU, flow and mask heads.

All maps are at 1/8 of the (padded) input size: (N, C, h, w).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .fused_conv import conv_relu, fuses_epilogue, in_weight_dtype

HIDDEN_DIM = 128
CONTEXT_DIM = 128
CORR_LEVELS = 4
CORR_RADIUS = 4
DOWNSAMPLE = 8


def memory_format_of(weight: torch.Tensor) -> torch.memory_format:
    """``torch.channels_last`` for a 4-D weight stored that way, else ``torch.contiguous_format``."""
    if not weight.is_contiguous() and weight.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


class BasicMotionEncoder(nn.Module):
    """Correlation features + current flow -> 128 motion channels (126 learned + the flow itself)."""

    def __init__(self, corr_channels: int = CORR_LEVELS * (2 * CORR_RADIUS + 1) ** 2):
        super().__init__()
        self.convc1 = nn.Conv2d(corr_channels, 256, 1)
        self.convc2 = nn.Conv2d(256, 192, kernel_size=3, padding=1)
        self.convf1 = nn.Conv2d(2, 128, kernel_size=7, padding=3)
        self.convf2 = nn.Conv2d(128, 64, kernel_size=3, padding=1)
        self.conv = nn.Conv2d(192 + 64, 128 - 2, 3, padding=1)
        self.fused_epilogues = True  # see conv_relu

    def forward(self, flow: torch.Tensor, corr: torch.Tensor) -> torch.Tensor:
        """flow (N, 2, h, w) pixels at 1/8 scale, corr (N, 324, h, w) -> (N, 128, h, w)."""
        fused = self.fused_epilogues
        c = conv_relu(self.convc1, in_weight_dtype(corr, self.convc1), fused)  # (N, 256, h, w)
        c = conv_relu(self.convc2, c, fused)  # (N, 192, h, w)
        f = conv_relu(self.convf1, in_weight_dtype(flow, self.convf1), fused)  # (N, 128, h, w)
        f = conv_relu(self.convf2, f, fused)  # (N, 64, h, w)
        motion = F.relu(self.conv(torch.cat((c, f), dim=1)))  # (N, 126, h, w)
        return torch.cat((motion, flow.to(motion.dtype)), dim=1)


@dataclass(frozen=True)
class GRUContext:
    """What the GRU's convolutions make of the context features, computed once per flow.

    The GRU's input is [hidden, context, motion] and the context is the same at every
    refinement step, so each gate convolution is split by input channels:
    conv([h, c, m], W) = conv([h, m], W_hm) + conv(c, W_c). Per direction ``1``/``2``:
    ``gates`` (N, 256, h, w) = the context terms of the update and reset gates,
    ``candidate`` (N, 128, h, w) = that of the candidate, and the [hidden, motion] weights.
    """

    gates: dict[str, torch.Tensor]
    candidate: dict[str, torch.Tensor]
    gate_weights: dict[str, tuple[torch.Tensor, torch.Tensor | None]]  # (weight (256, 256, kh, kw), bias (256,))
    candidate_weights: dict[str, tuple[torch.Tensor, torch.Tensor | None]]  # (weight (128, 256, kh, kw), bias (128,))


class SepConvGRU(nn.Module):
    """Convolutional GRU run twice: once with 1x5 kernels (horizontal), then 5x1 (vertical).

    The checkpoint's layers (``conv{z,r,q}{1,2}``) read [hidden (128), context (128),
    motion (128)]; :meth:`prepare` splits off the context's part once per flow (see
    :class:`GRUContext`) and fuses the update and reset gates into one convolution. On a
    GPU in half precision the biases join the context's terms there too (one pass over
    each output less per step; see :func:`fuses_epilogue`); the weights' bias is None then.
    """

    def __init__(self, hidden_dim: int = HIDDEN_DIM, input_dim: int = 256):
        super().__init__()
        self.hidden_dim = hidden_dim
        both = hidden_dim + input_dim
        for suffix, kernel, pad in (("1", (1, 5), (0, 2)), ("2", (5, 1), (2, 0))):
            for gate in ("z", "r", "q"):
                self.add_module(f"conv{gate}{suffix}", nn.Conv2d(both, hidden_dim, kernel, padding=pad))
        self.fused_epilogues = True  # fold the biases into the context's terms where fuses_epilogue allows

    def prepare(self, context: torch.Tensor) -> GRUContext:
        """context (N, 128, h, w) -> its precomputed terms (the context must be the GRU's input channels
        ``hidden_dim .. 2 * hidden_dim``, as in the checkpoint's layout)."""
        h = self.hidden_dim
        ctx = slice(h, 2 * h)
        gates, candidate, gate_weights, candidate_weights = {}, {}, {}, {}
        for suffix in ("1", "2"):
            conv_z, conv_r, conv_q = (getattr(self, f"conv{g}{suffix}") for g in ("z", "r", "q"))
            zr = torch.cat((conv_z.weight, conv_r.weight))  # (256, 384, kh, kw)
            zr_bias = torch.cat((conv_z.bias, conv_r.bias))  # (256,)
            # biases folded into the context's terms (GPU, half precision), else added by the convolutions
            fold = self.fused_epilogues and fuses_epilogue(context, conv_z)
            gates[suffix] = F.conv2d(context, zr[:, ctx], zr_bias if fold else None, padding=conv_z.padding)
            candidate[suffix] = F.conv2d(context, conv_q.weight[:, ctx], conv_q.bias if fold else None,
                                         padding=conv_q.padding)
            layout = memory_format_of(conv_z.weight)  # the split weights keep the layer's memory format
            gate_weights[suffix] = (torch.cat((zr[:, :h], zr[:, 2 * h:]), dim=1).contiguous(memory_format=layout),
                                    None if fold else zr_bias)
            candidate_weights[suffix] = (
                torch.cat((conv_q.weight[:, :h], conv_q.weight[:, 2 * h:]), dim=1).contiguous(memory_format=layout),
                None if fold else conv_q.bias)
        return GRUContext(gates, candidate, gate_weights, candidate_weights)

    def _step(self, hidden: torch.Tensor, motion: torch.Tensor, prepared: GRUContext, suffix: str) -> torch.Tensor:
        padding = getattr(self, f"convz{suffix}").padding
        weight, bias = prepared.gate_weights[suffix]
        # update and reset gates in one convolution (2 x 128 channels) and one sigmoid
        gates = F.conv2d(torch.cat((hidden, motion), dim=1), weight, bias, padding=padding) + prepared.gates[suffix]
        update, reset = torch.sigmoid(gates).split(self.hidden_dim, dim=1)
        weight, bias = prepared.candidate_weights[suffix]
        candidate = F.conv2d(torch.cat((reset * hidden, motion), dim=1), weight, bias, padding=padding)
        candidate = torch.tanh(candidate + prepared.candidate[suffix])
        return torch.lerp(hidden, candidate.to(hidden.dtype), update.to(hidden.dtype))  # (1 - z) h + z q, one kernel

    def forward(self, hidden: torch.Tensor, motion: torch.Tensor, prepared: GRUContext) -> torch.Tensor:
        """hidden (N, 128, h, w), motion (N, 128, h, w), the context's terms -> new hidden (N, 128, h, w)."""
        return self._step(self._step(hidden, motion, prepared, "1"), motion, prepared, "2")


class FlowHead(nn.Module):
    """Hidden state -> flow increment (N, 2, h, w) in pixels at 1/8 scale."""

    def __init__(self, input_dim: int = HIDDEN_DIM, hidden_dim: int = 256):
        super().__init__()
        self.conv1 = nn.Conv2d(input_dim, hidden_dim, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(hidden_dim, 2, kernel_size=3, padding=1)
        self.fused_epilogues = True  # see conv_relu

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden (N, 128, h, w) -> (N, 2, h, w)."""
        return self.conv2(conv_relu(self.conv1, hidden, self.fused_epilogues))


class BasicUpdateBlock(nn.Module):
    """One refinement step: motion encoding, GRU, flow increment and (optionally) the upsampling mask."""

    def __init__(self, hidden_dim: int = HIDDEN_DIM, context_dim: int = CONTEXT_DIM):
        super().__init__()
        self.encoder = BasicMotionEncoder()
        self.gru = SepConvGRU(hidden_dim, input_dim=context_dim + 128)
        self.flow_head = FlowHead(input_dim=hidden_dim, hidden_dim=256)
        self.mask = nn.Sequential(
            nn.Conv2d(hidden_dim, 256, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 9 * DOWNSAMPLE * DOWNSAMPLE, 1),
        )
        self.fused_epilogues = True  # see conv_relu

    def forward(self, hidden: torch.Tensor, context: GRUContext, corr: torch.Tensor, flow: torch.Tensor,
                with_mask: bool = True) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """
        Args:
            hidden: (N, 128, h, w); context: ``self.gru.prepare`` of the (N, 128, h, w) context features;
            corr: (N, 324, h, w); flow: (N, 2, h, w) current flow in pixels at 1/8 scale.
            with_mask: compute the upsampling mask (only the last step's is used).
        Returns:
            hidden (N, 128, h, w), mask (N, 576, h, w) logits scaled by 0.25 or None, delta (N, 2, h, w).
        """
        motion = self.encoder(flow, corr)  # (N, 128, h, w)
        hidden = self.gru(hidden, motion.to(hidden.dtype), context)
        delta = self.flow_head(hidden)
        mask = None
        if with_mask:
            mask = 0.25 * self.mask[2](conv_relu(self.mask[0], hidden, self.fused_epilogues))
        return hidden, mask, delta
