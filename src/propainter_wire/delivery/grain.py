"""Regrain: measure the plate's grain and add matching, fresh grain to the filled pixels.

VFX practice is degrain -> fix -> regrain. The engines' fills are smooth, so on a grainy
plate a fill reads as a smear; ``regrain`` puts back grain of the plate's strength (per
channel and per brightness level) and size, drawn anew for every frame, on the filled
pixels only: every pixel outside the mask keeps its exact value.

Grain is measured as the high-frequency residual ``r = x - G(x, HF_SIGMA)`` (the frame
minus a Gaussian blur), in flat unmasked areas, with robust statistics (1.4826 x median
absolute deviation) so edges and texture that survive the flatness test do not count.
Its size is the Gaussian sigma (pixels) of a blurred white-noise field whose residual
has the same lag-1 autocorrelation as the plate's. All values are in unit range:
0-1 = 0-255 (uint8) or 0-65535 (uint16); float frames are taken as they are.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

# The residual's blur: sigma 1.5 px keeps grain up to about 3 px across in the residual
# while a 640x360 plate's texture mostly stays in the blur.
HF_SIGMA = 1.5
LEVELS = 8
# A level (brightness bin) needs this many flat pixels for its own estimate; the
# others take the nearest measured level's value.
MIN_PIXELS = 256
# Pixels within this distance of the mask are not measured (wire halo, engine dilation).
EXCLUDE_PX = 4
# The flattest fraction of the unmasked pixels (by the blurred image's gradient) is measured.
FLAT_FRACTION = 0.5
# Grain sizes the model can take (Gaussian sigma, px); 0 is white (pixel-sized) grain.
_SIZES = np.round(np.concatenate([[0.0], np.arange(0.3, 3.01, 0.05)]), 3)
# has_grain: median residual std above which a plate counts as grainy, in unit range.
# Measured (benchmarks/quality/grain): a clean 8-bit gradient plate 0.0013 (its rounding
# noise, 1/255/sqrt(12) = 0.0011), the same plate with grain of std 1/255 at 0.6 px 0.0034,
# the compressed 640x360 test clips 0.0033 and 0.0044 (about one code value of noise and
# fine texture). 0.0025 (0.64 code values) is twice the rounding noise: a clean 8-bit or
# float render stays off, grain of one code value or more turns regrain on.
GRAIN_THRESHOLD = 0.0025
# noise_floor: blocks of this many px, the quantile of their residual std taken.
FLOOR_BLOCK = 16
FLOOR_QUANTILE = 0.02
# has_grain: noise floor above which a plate counts as grainy, unit range. Measured
# (benchmarks/quality/grain/floor.md, median of 8 frames): the clean compressed clips
# 0.0008-0.0021 (at most 0.0024 on one frame: H.264 and JPEG flatten smooth areas),
# the same plates with synthetic grain of std 2/255 at 0-0.6 px 0.0037-0.0048, at 4/255
# 0.0050-0.0057. 0.0030 sits between; grain of std 1/255, or 2/255 coarser than 1 px,
# stays under it (too faint to need matching); a noisy camera plate (DAVIS tennis, 0.0073) is on.
FLOOR_THRESHOLD = 0.0030


@dataclasses.dataclass(frozen=True)
class GrainModel:
    """A plate's grain.

    Attributes:
        levels: (L,) brightness of each level's centre, unit range (luma of the blurred frame).
        hf_std: (L, C) residual standard deviation per level and channel, unit range.
        size: grain size, Gaussian sigma in pixels (0 = white noise).
        channel_corr: (C, C) correlation of the residual between channels (1 on the diagonal).
        pixels: number of pixels measured.
    """

    levels: np.ndarray
    hf_std: np.ndarray
    size: float
    channel_corr: np.ndarray
    pixels: int

    @property
    def strength(self) -> float:
        """Median residual std over the measured levels and channels (unit range)."""
        return float(np.median(self.hf_std)) if self.hf_std.size else 0.0

    def grain_std(self) -> np.ndarray:
        """(L, C) standard deviation of the grain itself (not its residual), unit range."""
        return self.hf_std / _kernel_table()[1][_size_index(self.size)]


def to_unit(frame: np.ndarray) -> np.ndarray:
    """``frame`` as float32 in unit range (uint8 / 255, uint16 / 65535, float unchanged)."""
    if frame.dtype == np.uint8:
        return frame.astype(np.float32) / 255.0
    if frame.dtype == np.uint16:
        return frame.astype(np.float32) / 65535.0
    return frame.astype(np.float32, copy=False)


def from_unit(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Unit-range float32 back to ``dtype`` (rounded and clipped for integers)."""
    if dtype == np.uint8:
        return np.clip(np.rint(values * 255.0), 0, 255).astype(np.uint8)
    if dtype == np.uint16:
        return np.clip(np.rint(values * 65535.0), 0, 65535).astype(np.uint16)
    return values.astype(dtype)


def _blur(image: np.ndarray, sigma: float) -> np.ndarray:
    import cv2

    if sigma < 0.25:
        return image.copy()
    return cv2.GaussianBlur(image, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)


def highpass(image: np.ndarray) -> np.ndarray:
    """(H, W[, C]) float32 -> the residual ``image - G(image, HF_SIGMA)``, same shape."""
    return image - _blur(image, HF_SIGMA)


@functools.lru_cache(maxsize=1)
def _kernel_table() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each of ``_SIZES``: the residual's lag-1 autocorrelation and its std per unit-std grain.

    Computed exactly from the filters' impulse responses (no random sampling).
    """
    n = 41
    impulse = np.zeros((n, n), np.float32)
    impulse[n // 2, n // 2] = 1.0
    rho, gain = [], []
    for size in _SIZES:
        field = _blur(impulse, float(size))
        residual = highpass(field)
        energy = float((residual**2).sum())
        rho.append(float((residual[:, 1:] * residual[:, :-1]).sum()) / energy)
        gain.append(np.sqrt(energy / float((field**2).sum())))
    return np.asarray(rho), np.asarray(gain), _SIZES


def _size_index(size: float) -> int:
    return int(np.argmin(np.abs(_SIZES - size)))


def _size_from_rho(rho: float) -> float:
    table_rho, _, sizes = _kernel_table()
    order = np.argsort(table_rho)
    return float(np.interp(rho, table_rho[order], sizes[order]))


def _robust_std(values: np.ndarray) -> float:
    return float(1.4826 * np.median(np.abs(values - np.median(values))))


def _luma(image: np.ndarray) -> np.ndarray:
    return image[..., :3].mean(axis=-1) if image.ndim == 3 else image


def _per_level(residual: np.ndarray, luma: np.ndarray, select: np.ndarray, levels: int) -> np.ndarray:
    """(L, C) robust std of ``residual`` per brightness level over ``select``; NaN where too few pixels."""
    bins = np.clip((luma * levels).astype(np.int32), 0, levels - 1)
    out = np.full((levels, residual.shape[-1]), np.nan, np.float32)
    for level in range(levels):
        chosen = select & (bins == level)
        if int(chosen.sum()) >= MIN_PIXELS:
            values = residual[chosen]
            out[level] = [_robust_std(values[:, c]) for c in range(values.shape[1])]
    return out


def _fill_levels(std: np.ndarray) -> np.ndarray:
    """Levels without an estimate take the nearest measured level's value (zeros when none)."""
    centres = np.arange(std.shape[0])
    out = std.copy()
    for c in range(std.shape[1]):
        known = ~np.isnan(std[:, c])
        out[:, c] = np.interp(centres, centres[known], std[known, c]) if known.any() else 0.0
    return out


def estimate_grain(frame: np.ndarray, mask: np.ndarray | None = None, levels: int = LEVELS) -> GrainModel:
    """Measure the grain of one frame from the pixels outside ``mask``.

    Args:
        frame: (H, W, C) with C = 3 or 4 (alpha ignored), uint8, uint16 or float.
        mask: (H, W), non-zero = the region being replaced (not measured); None = whole frame.
        levels: brightness levels (equal bins of unit-range luma).
    Returns:
        The ``GrainModel``; where too few flat pixels exist, all-zero strength.
    """
    import cv2

    x = to_unit(np.asarray(frame))[..., :3]
    if x.ndim == 2:
        x = x[..., None]
    base = _blur(x, HF_SIGMA)
    residual = x - base
    luma = _luma(base)
    usable = np.ones(luma.shape, bool)
    if mask is not None and np.any(mask):
        grown = cv2.dilate(np.asarray(mask).astype(np.uint8), np.ones((2 * EXCLUDE_PX + 1,) * 2, np.uint8))
        usable = grown == 0
    smooth = _blur(luma, 2.0)
    gradient = np.hypot(cv2.Sobel(smooth, cv2.CV_32F, 1, 0), cv2.Sobel(smooth, cv2.CV_32F, 0, 1))
    flat = usable.copy()
    if usable.sum() >= MIN_PIXELS:
        flat &= gradient <= np.quantile(gradient[usable], FLAT_FRACTION)
    channels = x.shape[-1]
    std = _fill_levels(_per_level(residual, luma, flat, levels))
    if int(flat.sum()) < MIN_PIXELS:
        return GrainModel(np.arange(levels, dtype=np.float32) / levels + 0.5 / levels, np.zeros_like(std), 0.0,
                          np.eye(channels, dtype=np.float32), int(flat.sum()))
    # size and channel correlation from the flat pixels, outliers (> 4 std) trimmed
    scale = np.maximum(std.mean(axis=0), 1e-6)
    inlier = flat & np.all(np.abs(residual) < 4 * scale, axis=-1)
    pair = inlier[:, 1:] & inlier[:, :-1]
    lag = (residual[:, 1:] * residual[:, :-1])[pair].sum(axis=0)
    energy = 0.5 * ((residual[:, 1:] ** 2)[pair] + (residual[:, :-1] ** 2)[pair]).sum(axis=0)
    rho = float(np.mean(lag / np.maximum(energy, 1e-12)))
    samples = residual[inlier]
    with np.errstate(invalid="ignore", divide="ignore"):  # a constant channel has no correlation
        corr = np.corrcoef(samples.T) if channels > 1 and len(samples) > 2 else np.ones((1, 1))
    corr = np.nan_to_num(np.atleast_2d(corr).astype(np.float32), nan=0.0)
    np.fill_diagonal(corr, 1.0)
    return GrainModel(levels=(np.arange(levels, dtype=np.float32) + 0.5) / levels, hf_std=std,
                      size=_size_from_rho(rho), channel_corr=corr, pixels=int(flat.sum()))


def noise_floor(frame: np.ndarray, mask: np.ndarray | None = None) -> float:
    """The residual std of the plate's flattest blocks: the noise that is everywhere, unit range.

    The luma residual (``highpass`` of the channel mean) is cut into ``FLOOR_BLOCK`` px
    blocks clear of the mask (``EXCLUDE_PX``) and of clipped values (a block whose mean is
    within 2 code values of black or white cannot show grain); the ``FLOOR_QUANTILE``
    quantile of their std is returned. Grain sets a floor under every block; compression
    flattens smooth areas to almost nothing, and texture is absent from the flattest blocks.
    Returns 0.0 when fewer than 16 blocks qualify.
    """
    import cv2

    x = _luma(to_unit(np.asarray(frame)))
    residual = highpass(x)
    usable = np.ones(x.shape, bool)
    if mask is not None and np.any(mask):
        grown = cv2.dilate(np.asarray(mask).astype(np.uint8), np.ones((2 * EXCLUDE_PX + 1,) * 2, np.uint8))
        usable = grown == 0
    b = FLOOR_BLOCK
    h, w = (x.shape[0] // b) * b, (x.shape[1] // b) * b

    def blocks(a):
        return a[:h, :w].reshape(h // b, b, w // b, b).swapaxes(1, 2).reshape(-1, b * b)

    means = blocks(x).mean(axis=1)
    keep = blocks(usable).all(axis=1) & (means > 2 / 255) & (means < 253 / 255)
    if int(keep.sum()) < 16:
        return 0.0
    return float(np.quantile(blocks(residual)[keep].std(axis=1), FLOOR_QUANTILE))


def has_grain(model: GrainModel, threshold: float = GRAIN_THRESHOLD, floor: float | None = None,
              floor_threshold: float = FLOOR_THRESHOLD) -> bool:
    """The ``--regrain auto`` rule.

    The plate's median residual std exceeds ``threshold`` (unit range) and, when ``floor``
    (``noise_floor``) is given, the noise floor exceeds ``floor_threshold``: compressed
    footage carries residual in its texture but little in its flattest blocks.
    """
    ok = model.pixels >= MIN_PIXELS and model.strength > threshold
    return ok and (floor is None or floor > floor_threshold)


def auto_regrain(strength: float, floor: float) -> bool:
    """The ``--regrain auto`` rule on a clip's measures (medians over a few frames, unit range).

    ``strength``: ``GrainModel.strength`` above ``GRAIN_THRESHOLD``; ``floor``: ``noise_floor``
    above ``FLOOR_THRESHOLD`` (compressed footage carries residual in its texture, not in its
    flattest blocks; grain is under every block).
    """
    return strength > GRAIN_THRESHOLD and floor > FLOOR_THRESHOLD


def grain_rng(seed: int, frame_index: int) -> np.random.Generator:
    """A generator for one frame: fresh grain every frame, the same grain when a frame is redone."""
    return np.random.default_rng([int(seed), int(frame_index)])


def grain_field(height: int, width: int, size: float, rng: np.random.Generator,
                channel_corr: np.ndarray | None = None, channels: int = 3) -> np.ndarray:
    """(H, W, C) float32 grain: Gaussian white noise blurred by ``size`` px, unit std per channel.

    ``channel_corr`` (C, C) correlates the channels (film grain is partly shared by R, G, B).
    """
    noise = rng.standard_normal((height, width, channels), dtype=np.float32)
    if channel_corr is not None and channels > 1:
        try:
            lower = np.linalg.cholesky(channel_corr.astype(np.float64) + 1e-6 * np.eye(channels))
            noise = (noise.reshape(-1, channels) @ lower.T.astype(np.float32)).reshape(noise.shape)
        except np.linalg.LinAlgError:  # not positive definite: keep the channels independent
            pass
    return _blur(noise, size) / np.float32(_field_gain(size))


@functools.lru_cache(maxsize=64)
def _field_gain(size: float) -> float:
    """Std of white noise blurred by ``size`` px (per unit input std)."""
    n = 41
    impulse = np.zeros((n, n), np.float32)
    impulse[n // 2, n // 2] = 1.0
    return float(np.sqrt((_blur(impulse, size) ** 2).sum()))


def regrain(filled: np.ndarray, original: np.ndarray | None, mask: np.ndarray, model: GrainModel | None = None,
            rng: np.random.Generator | None = None, amount: float = 1.0) -> np.ndarray:
    """Add grain matching the plate to the masked pixels of a filled frame.

    The grain added per level and channel tops the fill's own residual up to the plate's
    (variance ``plate^2 - fill^2``, none where the fill is already as noisy, e.g. where
    the engine copied grainy pixels from other frames), so the residual inside the fill
    matches the plate's around it.

    Args:
        filled: (H, W, C) the engine's result, C = 3 or 4 (alpha untouched), uint8/uint16/float.
        original: the input frame, used to measure the grain when ``model`` is None.
        mask: (H, W), non-zero = pixels the engine filled (use the dilated mask it filled).
        model: the plate's grain (``estimate_grain``); measured from ``original`` when None.
        rng: the frame's generator (``grain_rng(seed, index)``); a fresh one when None.
        amount: scale of the added grain (1 = match the plate).
    Returns:
        A new frame, ``filled``'s dtype and shape; outside ``mask`` bit-identical to ``filled``.
    """
    mask = np.asarray(mask) != 0
    out = np.array(filled, copy=True)
    if not mask.any():
        return out
    if model is None:
        if original is None:
            raise ValueError("regrain needs a GrainModel or the original frame to measure one")
        model = estimate_grain(original, mask)
    if not np.any(model.hf_std > 0) or amount <= 0:
        return out
    size = float(_SIZES[_size_index(model.size)])
    rows, cols = np.nonzero(mask)
    margin = int(np.ceil(3 * max(size, HF_SIGMA))) + 2
    y0, y1 = max(rows.min() - margin, 0), min(rows.max() + margin + 1, mask.shape[0])
    x0, x1 = max(cols.min() - margin, 0), min(cols.max() + margin + 1, mask.shape[1])
    inside = mask[y0:y1, x0:x1]
    crop = np.array(to_unit(out[y0:y1, x0:x1]), copy=True)  # a float frame would be a view of out
    channels = min(crop.shape[-1], 3, model.hf_std.shape[1])
    x = crop[..., :channels]
    base = _blur(x, HF_SIGMA)
    luma = _luma(base)
    target = model.hf_std[:, :channels]
    existing = _existing_noise(x - base, luma, inside, len(model.levels))
    add = np.sqrt(np.maximum(target**2 - np.nan_to_num(existing[:, :channels]) ** 2, 0.0))
    gain = _kernel_table()[1][_size_index(size)]
    field = grain_field(y1 - y0, x1 - x0, size, rng or np.random.default_rng(),
                        model.channel_corr[:channels, :channels], channels)
    positions = np.clip(luma * len(model.levels) - 0.5, 0, len(model.levels) - 1)
    centres = np.arange(len(model.levels))
    for c in range(channels):
        amplitude = np.interp(positions, centres, add[:, c]).astype(np.float32)
        x[..., c] += field[..., c] * amplitude * np.float32(amount / gain)
    crop[..., :channels] = x
    region = out[y0:y1, x0:x1]
    region[inside] = from_unit(crop, out.dtype)[inside]
    return out


def _existing_noise(residual: np.ndarray, luma: np.ndarray, inside: np.ndarray, levels: int) -> np.ndarray:
    """(L, C) residual std already in the fill, over its interior (the border mixes in the plate)."""
    import cv2

    k = 2 * int(np.ceil(2 * HF_SIGMA)) + 1
    interior = cv2.erode(inside.astype(np.uint8), np.ones((k, k), np.uint8)) > 0
    existing = _per_level(residual, luma, interior, levels)
    # sparse levels take the nearest measured level's value; nothing measured = a clean fill (0)
    return _fill_levels(existing) if np.any(~np.isnan(existing)) else np.zeros_like(existing)
