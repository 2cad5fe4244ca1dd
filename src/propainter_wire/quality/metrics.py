"""Quality metrics against a ground truth: PSNR, SSIM and temporal warping error.

Value ranges: images may be uint8 in [0, 255], uint16 in [0, 65535] or float in
[0, 1]; the peak value (``data_range``) follows from the dtype unless given. Shapes:
a single image (H, W) or (H, W, C) with C in {1, 3, 4}, or a clip (T, H, W, C).
Masks are bool, (H, W) or (T, H, W), True where a pixel is counted; every metric
pools the masked pixels of the whole clip (it is not a mean of per-frame scores).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# SSIM constants of Wang et al. (2004), for images scaled to [0, 1]
_SSIM_K1, _SSIM_K2 = 0.01, 0.03
_SSIM_SIGMA = 1.5
_SSIM_KSIZE = 11


def default_data_range(x: np.ndarray) -> float:
    """Peak value of an image of this dtype: 255 (uint8), 65535 (uint16), 1.0 (float)."""
    if x.dtype == np.uint8:
        return 255.0
    if x.dtype == np.uint16:
        return 65535.0
    if np.issubdtype(x.dtype, np.floating):
        return 1.0
    raise TypeError(f"unsupported image dtype {x.dtype}")


def _as_clip(x: np.ndarray) -> np.ndarray:
    """View any accepted image layout as (N, H, W, C)."""
    if x.ndim == 2:
        return x[None, ..., None]
    if x.ndim == 3:
        if x.shape[-1] in (1, 3, 4):
            return x[None]
        return x[..., None]  # (T, H, W) grey clip
    if x.ndim == 4:
        return x
    raise ValueError(f"expected (H, W), (H, W, C) or (T, H, W, C), got shape {x.shape}")


def _clip_mask(mask: np.ndarray | None, clip_shape: tuple[int, ...]) -> np.ndarray:
    """The mask as (N, H, W) bool for a clip of shape (N, H, W, C)."""
    n, h, w = clip_shape[:3]
    if mask is None:
        return np.ones((n, h, w), bool)
    m = np.asarray(mask, bool)
    if m.shape[-2:] != (h, w):
        raise ValueError(f"mask {m.shape} does not match images of size {h}x{w}")
    return np.broadcast_to(m.reshape((-1, h, w)) if m.ndim > 2 else m, (n, h, w))


def _check_pair(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")


def mse(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None, data_range: float | None = None) -> float:
    """Mean squared error on the [0, 1] scale over the masked pixels (all channels).

    Returns:
        float in [0, 1]; NaN when the mask is empty.
    """
    a, b = np.asarray(a), np.asarray(b)
    _check_pair(a, b)
    peak = default_data_range(a) if data_range is None else float(data_range)
    ca, cb = _as_clip(a), _as_clip(b)
    m = _clip_mask(mask, ca.shape)
    if not m.any():
        return float("nan")
    diff = (ca[m].astype(np.float64) - cb[m].astype(np.float64)) / peak  # (P, C)
    return float(np.mean(diff * diff))


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None, data_range: float | None = None) -> float:
    """Peak signal-to-noise ratio in dB over the masked pixels.

    ``10 * log10(peak^2 / MSE)`` with the MSE pooled over every masked pixel and
    channel of the clip.

    Returns:
        dB; ``inf`` for identical images, NaN for an empty mask.
    """
    err = mse(a, b, mask, data_range)
    if np.isnan(err):
        return float("nan")
    if err == 0.0:
        return float("inf")
    return float(10.0 * np.log10(1.0 / err))


def ssim_map(a: np.ndarray, b: np.ndarray, data_range: float | None = None) -> np.ndarray:
    """Local SSIM with an 11x11 Gaussian window (sigma 1.5), averaged over channels.

    Args:
        a, b: images or clips of the same shape (see the module docstring).
    Returns:
        (N, H, W) float64 in [-1, 1]; N = 1 for a single image. Window borders are
        reflected.
    """
    a, b = np.asarray(a), np.asarray(b)
    _check_pair(a, b)
    peak = default_data_range(a) if data_range is None else float(data_range)
    ca = _as_clip(a).astype(np.float64) / peak
    cb = _as_clip(b).astype(np.float64) / peak
    c1, c2 = _SSIM_K1 ** 2, _SSIM_K2 ** 2

    def blur(x: np.ndarray) -> np.ndarray:
        out = cv2.GaussianBlur(x, (_SSIM_KSIZE, _SSIM_KSIZE), _SSIM_SIGMA, borderType=cv2.BORDER_REFLECT)
        return out.reshape(x.shape)

    maps = np.empty(ca.shape[:3], np.float64)
    for i in range(ca.shape[0]):
        x, y = ca[i], cb[i]  # (H, W, C)
        mx, my = blur(x), blur(y)
        vx = blur(x * x) - mx * mx
        vy = blur(y * y) - my * my
        cov = blur(x * y) - mx * my
        s = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
        maps[i] = s.mean(axis=-1)
    return maps


def ssim(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None, data_range: float | None = None) -> float:
    """Structural similarity, the local SSIM map averaged over the masked pixels.

    Returns:
        float in [-1, 1] (1 for identical images); NaN for an empty mask.
    """
    maps = ssim_map(a, b, data_range)
    m = _clip_mask(mask, maps.shape + (1,))
    if not m.any():
        return float("nan")
    return float(maps[m].mean())


# ----------------------------------------------------------------------------- temporal


@dataclass
class TemporalFlow:
    """Optical flow between consecutive frames of a ground-truth clip.

    Attributes:
        forward: (T-1, H, W, 2) float32, flow of frame t towards t+1 in pixels (x, y).
        valid: (T-1, H, W) bool, where the forward flow passes the forward-backward
            check and lands inside frame t+1.
    """

    forward: np.ndarray
    valid: np.ndarray


def _grey_u8(frame: np.ndarray) -> np.ndarray:
    peak = default_data_range(frame)
    f = frame.astype(np.float32) * (255.0 / peak)
    if f.ndim == 3:
        f = cv2.cvtColor(f[..., :3], cv2.COLOR_RGB2GRAY) if f.shape[-1] >= 3 else f[..., 0]
    return np.clip(np.rint(f), 0, 255).astype(np.uint8)


def _inside(flow: np.ndarray) -> np.ndarray:
    """(N, H, W, 2) flow -> (N, H, W) bool, target position inside the frame."""
    h, w = flow.shape[1:3]
    x = np.arange(w, dtype=np.float32)[None, None, :] + flow[..., 0]
    y = np.arange(h, dtype=np.float32)[None, :, None] + flow[..., 1]
    return (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)


def temporal_flow(truth: np.ndarray, preset: int = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM) -> TemporalFlow:
    """Flow of a ground-truth clip by OpenCV DIS, with its forward-backward validity.

    Args:
        truth: (T, H, W, 3) clip, T >= 2 (see the module docstring for dtypes).
        preset: a ``cv2.DISOPTICAL_FLOW_PRESET_*``.
    """
    truth = np.asarray(truth)
    if truth.ndim != 4 or truth.shape[0] < 2:
        raise ValueError(f"need a clip (T >= 2, H, W, C), got {truth.shape}")
    dis = cv2.DISOpticalFlow_create(preset)
    grey = [_grey_u8(f) for f in truth]
    fw = np.stack([dis.calc(grey[t], grey[t + 1], None) for t in range(len(grey) - 1)]).astype(np.float32)
    bw = np.stack([dis.calc(grey[t + 1], grey[t], None) for t in range(len(grey) - 1)]).astype(np.float32)
    import torch  # the CLI imports this module to build its parser: keep torch off that path

    from ..flow.warp import fb_consistency

    fw_t = torch.from_numpy(fw).permute(0, 3, 1, 2)  # (T-1, 2, H, W)
    bw_t = torch.from_numpy(bw).permute(0, 3, 1, 2)
    consistent = fb_consistency(fw_t, bw_t)[:, 0].numpy() > 0.5  # (T-1, H, W)
    return TemporalFlow(forward=fw, valid=consistent & _inside(fw))


def warping_error(result: np.ndarray, flows: TemporalFlow | np.ndarray, mask: np.ndarray | None = None,
                  data_range: float | None = None) -> float:
    """Temporal consistency: how much each frame differs from the next one warped back.

    For each t, frame t+1 of ``result`` is warped into frame t's grid with the
    ground truth's forward flow (bilinear) and compared with frame t of
    ``result``. Pixels count where the flow is valid (forward-backward consistent,
    inside the frame) and, when ``mask`` is given, where ``mask[t] | mask[t+1]``
    (both taken in frame t's grid; fine for small motions).

    Args:
        result: (T, H, W, C) clip to score.
        flows: a :class:`TemporalFlow` of the ground truth, or a (T-1, H, W, 2) flow
            array trusted everywhere inside the frame.
        mask: optional (T, H, W) or (H, W) bool.
    Returns:
        mean absolute difference in 8-bit grey levels (0..255 whatever the input
        dtype); NaN when no pixel counts. A perfectly consistent clip scores 0; the
        ground truth itself scores a little above 0 (interpolation, occlusions).
    """
    result = np.asarray(result)
    if isinstance(flows, TemporalFlow):
        forward, valid = flows.forward, flows.valid
    else:
        forward = np.asarray(flows, np.float32)
        valid = _inside(forward)
    if result.ndim != 4 or forward.shape != (result.shape[0] - 1, *result.shape[1:3], 2):
        raise ValueError(f"result {result.shape} and flows {forward.shape} do not match")
    peak = default_data_range(result) if data_range is None else float(data_range)
    count = valid.copy()
    if mask is not None:
        m = _clip_mask(mask, result.shape)
        count &= m[:-1] | m[1:]
    if not count.any():
        return float("nan")
    import torch

    from ..flow.warp import flow_warp

    total, n = 0.0, 0
    for t in range(result.shape[0] - 1):
        if not count[t].any():
            continue
        nxt = torch.from_numpy(result[t + 1].astype(np.float32)).permute(2, 0, 1)[None]  # (1, C, H, W)
        flow = torch.from_numpy(np.ascontiguousarray(forward[t])).permute(2, 0, 1)[None]  # (1, 2, H, W)
        warped = flow_warp(nxt, flow)[0].permute(1, 2, 0).numpy()  # (H, W, C)
        diff = np.abs(result[t].astype(np.float32) - warped).mean(axis=-1)  # (H, W)
        total += float(diff[count[t]].sum(dtype=np.float64))
        n += int(count[t].sum())
    return total / n * (255.0 / peak)
