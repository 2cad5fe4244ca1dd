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

import numpy as np
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


# ---------------------------------------------------------------------------------------------
# Point tracking variant (classic engine): each masked pixel follows the chained flow, frame by
# frame, in both directions until it lands on a known pixel; the colour is then sampled once
# (bilinear) in that source frame, so chained hops do not blur or round.
# ---------------------------------------------------------------------------------------------


def sample_points(images: np.ndarray, frame: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear samples of a stack of images at sub-pixel points.

    Args:
        images: (T, H, W, C) any dtype (read as float32).
        frame: (N,) int frame index of each point.
        x, y: (N,) float pixel coordinates; clamped to the image.
    Returns:
        (N, C) float32.
    """
    _, h, w, c = images.shape
    flat = images.reshape(-1, c)
    x = np.clip(x, 0.0, w - 1.0)
    y = np.clip(y, 0.0, h - 1.0)
    x0 = np.minimum(x.astype(np.int64), w - 2) if w > 1 else np.zeros(x.shape, np.int64)
    y0 = np.minimum(y.astype(np.int64), h - 2) if h > 1 else np.zeros(y.shape, np.int64)
    fx = (x - x0).astype(np.float32)[:, None]
    fy = (y - y0).astype(np.float32)[:, None]
    dx = 1 if w > 1 else 0
    dy = w if h > 1 else 0
    base = (frame.astype(np.int64) * h + y0) * w + x0
    # ``take`` along the row axis gathers (N, C) rows several times faster than fancy indexing
    top = flat.take(base, axis=0) * (1 - fx) + flat.take(base + dx, axis=0) * fx
    bottom = flat.take(base + dy, axis=0) * (1 - fx) + flat.take(base + dy + dx, axis=0) * fx
    return (top * (1 - fy) + bottom * fy).astype(np.float32)


@dataclass
class TrackedFill:
    """Result of ``propagate_tracks`` for the requested pixels.

    Attributes:
        colours: (T, H, W, C) float32, the fused colour where ``seen`` (zeros elsewhere).
        seen: (T, H, W) bool, pixels some other frame shows.
        hops: (T, H, W) int16, temporal distance of the nearest source (0 where not seen).
        spread: (T, H, W) float32, mean absolute difference (colour units) of the forward and backward
            candidates where both directions found one, else 0.
    """

    colours: np.ndarray
    seen: np.ndarray
    hops: np.ndarray
    spread: np.ndarray | None = None


def _track(frames: np.ndarray, unknown: np.ndarray, along: np.ndarray, back: np.ndarray, frame: np.ndarray,
           x: np.ndarray, y: np.ndarray, step: int, max_hops: int, alpha1: float, alpha2: float,
           known_below: float) -> tuple[np.ndarray, np.ndarray]:
    """Follow points from their frame in one direction (``step`` = +1 or -1) until they reach a known pixel.

    ``along[i]`` is the flow from frame ``i`` (step +1) or ``i + 1`` (step -1) to the next frame in the
    direction of travel; ``back[i]`` its reverse. Returns the sampled colours (N, C) and hop counts (N,),
    0 where no source was found.
    """
    t_len, h, w, _ = frames.shape
    n = x.size
    colours = np.zeros((n, frames.shape[-1]), dtype=np.float32)
    hops = np.zeros(n, dtype=np.int16)
    live = np.arange(n)
    cur, px, py = frame.astype(np.int64).copy(), x.astype(np.float32).copy(), y.astype(np.float32).copy()
    for k in range(1, max_hops + 1):
        nxt = cur + step
        keep = (nxt >= 0) & (nxt < t_len)
        live, cur, nxt, px, py = live[keep], cur[keep], nxt[keep], px[keep], py[keep]
        if live.size == 0:
            break
        pair = cur if step > 0 else nxt  # index of the flow pair between cur and nxt
        f = sample_points(along, pair, px, py)
        qx, qy = px + f[:, 0], py + f[:, 1]
        r = sample_points(back, pair, qx, qy)
        err = np.square(f + r).sum(1)
        bound = alpha1 * (np.square(f).sum(1) + np.square(r).sum(1)) + alpha2
        keep = (err < bound) & (qx >= 0) & (qx <= w - 1) & (qy >= 0) & (qy <= h - 1)
        live, nxt, qx, qy = live[keep], nxt[keep], qx[keep], qy[keep]
        hit = sample_points(unknown, nxt, qx, qy)[:, 0] < known_below
        colours[live[hit]] = sample_points(frames, nxt[hit], qx[hit], qy[hit])
        hops[live[hit]] = k
        miss = ~hit
        live, cur, px, py = live[miss], nxt[miss], qx[miss], qy[miss]
    return colours, hops


def propagate_tracks(frames: np.ndarray, unknown: np.ndarray, flows_f: np.ndarray, flows_b: np.ndarray,
                     targets: np.ndarray | None = None, max_hops: int = 24, alpha1: float = 0.01,
                     alpha2: float = 0.5, known_below: float = 0.01, hop_power: float = 1.0) -> TrackedFill:
    """Colours for masked pixels from the nearest frames that show them, both directions fused.

    Args:
        frames: (T, H, W, C) float32, any range.
        unknown: (T, H, W) bool, pixels that cannot serve as a source.
        flows_f: (T-1, H, W, 2) pixels, ``t -> t+1`` (completed inside the masks).
        flows_b: (T-1, H, W, 2) pixels, ``t+1 -> t``.
        targets: (T, H, W) bool, pixels to estimate; ``unknown`` when None.
        max_hops: farthest frame distance searched in each direction.
        alpha1, alpha2: forward-backward consistency bound per hop (see ``fb_consistency``).
        known_below: a source point is usable when the bilinear ``unknown`` there is below this.
        hop_power: where both directions find a source the colours are averaged with weights
            ``1 / hops ** hop_power`` (errors of chained flows grow with the distance).
    Returns:
        ``TrackedFill``.
    """
    t_len, h, w, c = frames.shape
    targets = unknown if targets is None else targets
    frames = np.ascontiguousarray(frames, dtype=np.float32)
    unknown_f = np.ascontiguousarray(unknown, dtype=np.uint8)[..., None]  # 0/1, sampled bilinearly
    colours = np.zeros((t_len, h, w, c), dtype=np.float32)
    seen = np.zeros((t_len, h, w), dtype=bool)
    hops = np.zeros((t_len, h, w), dtype=np.int16)
    fi, yi, xi = np.nonzero(targets)
    spread = np.zeros((t_len, h, w), dtype=np.float32)
    if t_len < 2 or fi.size == 0:
        return TrackedFill(colours, seen, hops, spread)
    x, y = xi.astype(np.float32), yi.astype(np.float32)
    col_f, hop_f = _track(frames, unknown_f, flows_f, flows_b, fi, x, y, +1, max_hops, alpha1, alpha2, known_below)
    col_b, hop_b = _track(frames, unknown_f, flows_b, flows_f, fi, x, y, -1, max_hops, alpha1, alpha2, known_below)
    w_f = np.where(hop_f > 0, np.maximum(hop_f, 1) ** -float(hop_power), 0.0).astype(np.float32)
    w_b = np.where(hop_b > 0, np.maximum(hop_b, 1) ** -float(hop_power), 0.0).astype(np.float32)
    total = w_f + w_b
    found = total > 0
    fused = (col_f * w_f[:, None] + col_b * w_b[:, None]) / np.maximum(total, 1e-12)[:, None]
    colours[fi[found], yi[found], xi[found]] = fused[found]
    seen[fi[found], yi[found], xi[found]] = True
    nearest = np.where((hop_f > 0) & ((hop_f <= hop_b) | (hop_b == 0)), hop_f, hop_b)
    hops[fi, yi, xi] = nearest
    both = (hop_f > 0) & (hop_b > 0)
    spread[fi[both], yi[both], xi[both]] = np.abs(col_f[both] - col_b[both]).mean(1)
    return TrackedFill(colours, seen, hops, spread)
