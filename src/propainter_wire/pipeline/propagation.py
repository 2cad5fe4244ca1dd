"""Non-learned, flow-guided image propagation (ProPainter's ``img_propagation``).

Two sweeps fill masked pixels by pulling them from the neighbouring frame along
the completed flow:

1. a *backward* sweep, from the last frame to the first: frame ``t`` takes pixels
   from the already-swept frame ``t + 1`` through the forward flow ``t -> t+1``;
2. a *forward* sweep over the result of the first one, from the first frame to
   the last: frame ``t`` takes pixels from the swept frame ``t - 1`` through the
   backward flow ``t -> t-1``.

A pixel is taken only where the flow pair passes the forward-backward
consistency check and the source pixel is itself known. The output is the
forward sweep's frames and masks, as the reference returns them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..flow.warp import fb_consistency, flow_warp

MASK_THRESHOLD = 0.1


def _binarize(x: torch.Tensor, threshold: float = MASK_THRESHOLD) -> torch.Tensor:
    """1 where ``x > threshold`` else 0, dtype of ``x`` (NaN maps to 0)."""
    return (x > threshold).to(x.dtype)


@dataclass(frozen=True)
class _Fetch:
    """Moves one slice of a stored tensor to the compute device and dtype.

    Slices are moved in their stored dtype and converted there (the conversion is
    elementwise, so the values do not depend on where it happens). Host-to-device
    copies may be non-blocking: the host never writes a fetched slice itself; the
    sweep's write-back is a device-to-host copy queued on the same stream, after
    the upload.
    """

    device: torch.device
    dtype: torch.dtype
    non_blocking: bool

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(self.device, non_blocking=self.non_blocking).to(self.dtype)


def _sweep(frames: torch.Tensor, masks: torch.Tensor, flows: torch.Tensor, reverse: torch.Tensor,
           order: range, flow_index: int, interpolation: str, fetch: _Fetch,
           out_frames: torch.Tensor, out_masks: torch.Tensor) -> None:
    """One directional sweep, one frame at a time, written into ``out_frames`` / ``out_masks``.

    Only the slices of step ``t`` (frame, mask, flow pair) are moved to ``fetch.device``; the frame
    and mask of the previous step stay there. ``frames`` may be ``out_frames`` itself (and ``masks``
    ``out_masks``): slice ``t`` is read before it is overwritten and never read again.

    Args:
        frames: (B, T, C, H, W) any range, stored anywhere.
        masks: (B, T, 1, H, W) 1 = unknown, any dtype (converted to ``fetch.dtype`` per slice).
        flows: (B, T-1, 2, H, W) pixels; at step ``t`` the flow ``flows[:, t + flow_index]`` points from
            frame ``t`` to the previously swept frame.
        reverse: (B, T-1, 2, H, W) the flows in the opposite direction (for the consistency check).
        order: frame indices in sweep order.
        flow_index: 0 for the backward sweep (flow ``t -> t+1``), -1 for the forward one (``t -> t-1``).
        out_frames: (B, T, C, H, W) receives the swept frames.
        out_masks: (B, T, 1, H, W) receives the swept masks ({0, 1} except the first frame swept,
            which keeps its input mask).
    """
    prev_frame = prev_mask = None
    for step, t in enumerate(order):
        cur_frame, cur_mask = fetch(frames[:, t]), fetch(masks[:, t])  # (B, C, H, W), (B, 1, H, W)
        if step > 0:
            pair = t + flow_index
            flow = fetch(flows[:, pair])  # (B, 2, H, W)
            ok = fb_consistency(flow, fetch(reverse[:, pair]))  # (B, 1, H, W): 1 where the flow is trusted
            warped = flow_warp(prev_frame, flow, interpolation)
            # is the source pixel itself still unknown? (always bilinear, as the reference)
            src_unknown = _binarize(flow_warp(prev_mask, flow))
            usable = ok * (1 - src_unknown)
            take = _binarize(cur_mask * usable)
            cur_frame = torch.where(take > 0, warped, cur_frame)
            cur_mask = _binarize(cur_mask * (1 - usable))
        if step > 0 or out_frames is not frames:
            out_frames[:, t] = cur_frame
            out_masks[:, t] = cur_mask
        prev_frame, prev_mask = cur_frame, cur_mask


@torch.no_grad()
def propagate_images(frames: torch.Tensor, flows_f: torch.Tensor, flows_b: torch.Tensor, masks: torch.Tensor,
                     interpolation: str = "nearest",
                     device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Fill masked pixels from neighbouring frames along the flow (no learned weights).

    The inputs and outputs stay on the device of ``frames``; the arithmetic runs on ``device``, one frame
    at a time, so ``device`` only ever holds a few (B, C, H, W) slices. Beyond the outputs nothing of
    size T is allocated (the first sweep's frames and masks are kept in the output buffers). Results are
    bit-identical whichever ``device`` is given, as long as it is the same kind of device as the inputs'.

    Args:
        frames: (T, C, H, W) or (B, T, C, H, W), any range (the reference feeds ``frames * (1 - masks)``
            in [-1, 1]).
        flows_f: (T-1, 2, H, W) or (B, T-1, 2, H, W) forward flows ``t -> t+1``, pixels at this size.
        flows_b: same shape, backward flows ``t+1 -> t``.
        masks: (T, 1, H, W) or (B, T, 1, H, W) float or bool, 1 = pixel to fill.
        interpolation: 'nearest' (the reference's choice) or 'bilinear' for sampling colours.
        device: where the arithmetic runs; None = the device of ``frames``. With a CUDA device and
            host inputs, each step uploads its slices (asynchronously when the inputs are pinned, in
            which case the outputs are pinned as well) and writes its results back to the host.
    Returns:
        ``(prop_frames, updated_masks)`` shaped like ``frames`` and ``masks``, dtype of ``frames``, on the
        device of ``frames``: the frames with every reachable masked pixel filled, and the masks of the
        pixels still unknown ({0, 1}).
    """
    batched = frames.dim() == 5
    if not batched:
        frames, flows_f, flows_b, masks = (x.unsqueeze(0) for x in (frames, flows_f, flows_b, masks))
    b, t, c, h, w = frames.shape
    if masks.shape != (b, t, 1, h, w):
        raise ValueError(f"masks {tuple(masks.shape)} do not match frames {tuple(frames.shape)}")
    for name, fl in (("flows_f", flows_f), ("flows_b", flows_b)):
        if fl.shape != (b, t - 1, 2, h, w):
            raise ValueError(f"{name} {tuple(fl.shape)} does not match frames {tuple(frames.shape)}")

    home = frames.device
    compute = home if device is None else torch.device(device)
    to_gpu = home.type == "cpu" and compute.type == "cuda"
    fetch = _Fetch(compute, frames.dtype, non_blocking=to_gpu)
    pin = to_gpu and frames.is_pinned()
    out = torch.empty((b, t, c, h, w), dtype=frames.dtype, device=home, pin_memory=pin)
    out_masks = torch.empty((b, t, 1, h, w), dtype=frames.dtype, device=home, pin_memory=pin)
    # backward sweep (last frame first) pulls from t+1 along flows_f[t]; its result goes into the outputs
    _sweep(frames, masks, flows_f, flows_b, range(t - 1, -1, -1), 0, interpolation, fetch, out, out_masks)
    # forward sweep over that result, in place, pulls from t-1 along flows_b[t-1]
    _sweep(out, out_masks, flows_b, flows_f, range(t), -1, interpolation, fetch, out, out_masks)
    if not batched:
        out, out_masks = out[0], out_masks[0]
    return out, out_masks
