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

Parts: the building blocks in :mod:`.flow_completion_blocks`, the planning of memory-bounded chunks
in :mod:`.flow_completion_chunks`.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from . import flow_completion_chunks as chunks
from .flow_completion_blocks import (
    BidirectionalFeaturePropagation,
    Conv3dAs2d,
    EdgeDetection,
    P3DBlock,
    Upsample2xConv,
    leaky_relu,
)

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
            leaky_relu(0.2),
        )
        # -> (B, 64, T, H/4, W/4)
        self.encoder1 = nn.Sequential(
            P3DBlock(32, 32, 3, 1, 1), leaky_relu(0.2),
            P3DBlock(32, 64, 3, 2, 1), leaky_relu(0.2),
        )
        # -> (B, 128, T, H/8, W/8)
        self.encoder2 = nn.Sequential(
            P3DBlock(64, 64, 3, 1, 1), leaky_relu(0.2),
            P3DBlock(64, c, 3, 2, 1), leaky_relu(0.2),
        )
        # spatial context: dilations 3, 2, 1 (padding = dilation keeps the size)
        mid: list[nn.Module] = []
        for dil in (3, 2, 1):
            mid += [Conv3dAs2d(c, c, (1, 3, 3), padding=(0, dil, dil), dilation=(1, dil, dil)), leaky_relu(0.2)]
        self.mid_dilation = nn.Sequential(*mid)

        self.feat_prop_module = BidirectionalFeaturePropagation(c)

        # (N, 128, H/8, W/8) -> (N, 64, H/4, W/4), plus the encoder1 skip
        self.decoder2 = nn.Sequential(
            nn.Conv2d(c, c, 3, 1, 1), leaky_relu(0.2),
            Upsample2xConv(c, 64, 3, 1), leaky_relu(0.2),
        )
        # -> (N, 32, H/2, W/2)
        self.decoder1 = nn.Sequential(
            nn.Conv2d(64, 64, 3, 1, 1), leaky_relu(0.2),
            Upsample2xConv(64, 32, 3, 1), leaky_relu(0.2),
        )
        # -> (N, 2, H, W) flow in pixels
        self.upsample = nn.Sequential(
            nn.Conv2d(32, 32, 3, padding=1), leaky_relu(0.2),
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
        """Frames each side of a chunk that the encoder stages read (8 for the checkpoint's layout;
        see :func:`.flow_completion_chunks.temporal_halo`)."""
        return chunks.temporal_halo(self.encoder_modules)

    @classmethod
    def frames_for_budget(cls, height: int, width: int, budget_bytes: int, dtype: torch.dtype = torch.float16,
                          num_flows: int | None = None) -> int:
        """A ``frames_per_chunk`` whose activations should fit ``budget_bytes`` (flow size ``height`` x
        ``width``; ``num_flows`` to take the sequence-wide tensors off first): see
        :func:`.flow_completion_chunks.frames_for_budget`."""
        with torch.device("meta"):  # structure only, no weights allocated
            halo = cls().temporal_halo
        return chunks.frames_for_budget(height, width, budget_bytes, halo, dtype, num_flows)

    def _chunk_windows(self, batch: int, length: int) -> list[chunks.Window]:
        """``(rows, read, keep, keep_in_read)`` encoder windows for ``frames_per_chunk`` (one window without)."""
        return chunks.chunk_windows(self.frames_per_chunk, self.temporal_halo if self.frames_per_chunk else 0,
                                    batch, length)

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
