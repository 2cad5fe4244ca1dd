"""Synthetic test material with a known ground truth.

Everything here is pure numpy/OpenCV and deterministic given ``seed``:

* :func:`procedural_clip` renders a textured landscape (sky, clouds, hills,
  buildings, trees, a textured ground) on a canvas larger than the frame and films
  it with a smooth sub-pixel camera pan and a slight zoom, so content really moves.
* :func:`draw_wires` draws thin, sagging, swaying, anti-aliased wires over a clip and
  returns the user's mask (exactly the pixels the wires touch, grown by 1 px).
* :func:`static_box_mask`, :func:`logo_mask` and :func:`moving_object_mask` make
  masks for video completion and object removal; :func:`blank` hides masked pixels.

Frames are (T, H, W, 3) uint8 RGB in [0, 255]; masks are (T, H, W) bool.
"""

from __future__ import annotations

import cv2
import numpy as np

# supersampling factor used to anti-alias the wires
_WIRE_SUPERSAMPLE = 4


# ----------------------------------------------------------------------------- texture


def fractal_noise(height: int, width: int, rng: np.random.Generator, base_cells: int = 4,
                  octaves: int = 5, persistence: float = 0.55) -> np.ndarray:
    """Multi-octave value noise.

    Each octave is a random grid of ``base_cells * 2**k`` cells along the longer
    side, upsampled bicubically; amplitudes fall by ``persistence`` per octave.

    Returns:
        (height, width) float32, rescaled to [0, 1].
    """
    total = np.zeros((height, width), np.float32)
    amplitude = 1.0
    longer = max(height, width)
    for octave in range(octaves):
        cells = base_cells * 2 ** octave
        gh = max(2, int(round(cells * height / longer)) + 1)
        gw = max(2, int(round(cells * width / longer)) + 1)
        grid = rng.random((gh, gw), dtype=np.float32)
        total += amplitude * cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
        amplitude *= persistence
    lo, hi = float(total.min()), float(total.max())
    return (total - lo) / max(hi - lo, 1e-6)


def _blend(canvas: np.ndarray, layer: np.ndarray, alpha: np.ndarray) -> None:
    """In place: canvas = canvas * (1 - alpha) + layer * alpha; alpha (H, W) in [0, 1]."""
    a = alpha[..., None]
    canvas *= 1.0 - a
    canvas += layer * a


def _shape_alpha(height: int, width: int, draw, supersample: int = 2) -> np.ndarray:
    """Anti-aliased coverage of the shapes ``draw(img, scale)`` paints on a supersampled canvas.

    Returns:
        (height, width) float32 in [0, 1].
    """
    big = np.zeros((height * supersample, width * supersample), np.uint8)
    draw(big, supersample)
    return cv2.resize(big, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def render_canvas(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A landscape texture: gradient sky with clouds, far hills, buildings, trees, textured ground.

    Returns:
        (height, width, 3) float32 RGB in [0, 1].
    """
    rng = np.random.default_rng(seed)
    ys = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    horizon = int(height * rng.uniform(0.45, 0.6))

    # sky: vertical gradient (deep blue at the top, pale at the horizon) plus clouds
    top = np.array([0.25, 0.42, 0.75], np.float32) + rng.uniform(-0.05, 0.05, 3).astype(np.float32)
    low = np.array([0.78, 0.84, 0.92], np.float32)
    t = np.clip(ys / max(horizon / height, 1e-3), 0, 1)[..., None]  # (H, 1, 1)
    canvas = np.broadcast_to(top * (1 - t) + low * t, (height, width, 3)).astype(np.float32).copy()
    clouds = fractal_noise(height, width, rng, base_cells=3, octaves=6)
    cloud_alpha = np.clip((clouds - 0.5) * 2.2, 0, 1) * np.clip(1.2 - ys * 1.4, 0, 1)
    _blend(canvas, np.full(3, 0.96, np.float32), 0.85 * cloud_alpha)

    # far hills: a noisy ridge line, hazy green-blue
    ridge_noise = cv2.resize(rng.random((1, 12), dtype=np.float32), (width, 1), interpolation=cv2.INTER_CUBIC)[0]
    ridge = horizon - height * (0.05 + 0.12 * ridge_noise)
    hills = (np.arange(height)[:, None] >= ridge[None, :]).astype(np.float32)
    hills = cv2.GaussianBlur(hills, (0, 0), 0.8)
    hill_tex = fractal_noise(height, width, rng, base_cells=8, octaves=4)[..., None]
    hill_col = np.array([0.42, 0.55, 0.55], np.float32) * (0.85 + 0.3 * hill_tex)
    _blend(canvas, hill_col, hills)

    # ground: grass/earth texture, darker and coarser towards the camera
    ground = (np.arange(height)[:, None] >= horizon).astype(np.float32) * np.ones((1, width), np.float32)
    fine = fractal_noise(height, width, rng, base_cells=16, octaves=5)
    coarse = fractal_noise(height, width, rng, base_cells=4, octaves=3)
    grass = np.array([0.30, 0.45, 0.18], np.float32)
    earth = np.array([0.50, 0.38, 0.25], np.float32)
    mix = np.clip((coarse - 0.35) * 2.0, 0, 1)[..., None]
    ground_col = (grass * (1 - mix) + earth * mix) * (0.65 + 0.6 * fine[..., None])
    _blend(canvas, ground_col, ground)

    # a road across the ground with lane markings (strong straight edges)
    road_y = int(horizon + (height - horizon) * rng.uniform(0.45, 0.7))
    road_h = max(4, int(height * 0.06))
    road = np.zeros((height, width), np.float32)
    road[road_y:road_y + road_h] = 1.0
    asphalt = np.array([0.33, 0.33, 0.35], np.float32) * (0.85 + 0.3 * fine[..., None])
    _blend(canvas, asphalt, road)
    dash = max(6, width // 60)
    mark_y = road_y + road_h // 2
    for x0 in range(int(rng.integers(0, dash)), width, dash * 3):
        canvas[mark_y:mark_y + max(1, road_h // 8), x0:x0 + dash] = (0.92, 0.9, 0.8)

    # buildings on the horizon: rectangles with lit windows
    x = int(rng.integers(0, width // 12 + 1))
    while x < width:
        bw = int(rng.integers(max(8, width // 40), max(9, width // 14)))
        bh = int(rng.integers(max(8, height // 12), max(9, height // 4)))
        if rng.random() < 0.55:
            base = horizon + 2
            colour = rng.uniform(0.35, 0.8) * np.array([1.0, 0.95, 0.9], np.float32) * rng.uniform(0.85, 1.1, 3)
            shade = 0.9 + 0.2 * fractal_noise(bh, bw, rng, base_cells=3, octaves=3)[..., None]
            block = np.clip(colour * shade, 0, 1).astype(np.float32)
            win = max(2, bw // 8)
            for wy in range(win, bh - win, win * 2):
                for wx in range(win, bw - win, win * 2):
                    lit = rng.random() < 0.4
                    block[wy:wy + win, wx:wx + win] = (0.95, 0.85, 0.45) if lit else (0.12, 0.14, 0.18)
            y0 = max(0, base - bh)
            x1 = min(width, x + bw)
            canvas[y0:base, x:x1] = block[bh - (base - y0):, :x1 - x]
        x += bw + int(rng.integers(0, max(2, width // 20)))

    # trees: clusters of dark-green discs with a trunk, anti-aliased
    n_trees = int(rng.integers(6, 14))
    for _ in range(n_trees):
        cx = float(rng.uniform(0, width))
        foot = float(rng.uniform(horizon, road_y))
        r = float(rng.uniform(height * 0.025, height * 0.07))
        blobs = [(cx + rng.normal(0, r * 0.5), foot - r * 1.6 + rng.normal(0, r * 0.4), r * rng.uniform(0.5, 0.9))
                 for _ in range(6)]

        def draw(img, s, blobs=blobs, cx=cx, foot=foot, r=r):
            cv2.rectangle(img, (int((cx - r * 0.12) * s), int((foot - r) * s)), (int((cx + r * 0.12) * s),
                          int(foot * s)), 255, -1)
            for bx, by, br in blobs:
                cv2.circle(img, (int(bx * s), int(by * s)), max(1, int(br * s)), 255, -1)

        alpha = _shape_alpha(height, width, draw)
        leaf = np.array([0.12, 0.30, 0.10], np.float32) * rng.uniform(0.8, 1.3)
        _blend(canvas, leaf * (0.6 + 0.8 * fine[..., None]), alpha)

    # overall colour variation (slow illumination changes) and a little grain
    tint = fractal_noise(height, width, rng, base_cells=2, octaves=2)[..., None]
    canvas *= 0.9 + 0.2 * tint
    canvas += rng.normal(0, 0.008, canvas.shape).astype(np.float32)
    return np.clip(canvas, 0, 1)


def procedural_clip(num_frames: int, height: int, width: int, seed: int = 0,
                    pan_speed: float = 1.3, tilt_speed: float = 0.5, zoom: float = 0.03) -> np.ndarray:
    """A clip of a procedural landscape filmed with a smooth camera pan.

    The texture is rendered once on a canvas about 1.5x the frame and each frame
    samples it with an affine map (bicubic, sub-pixel): a horizontal pan of about
    ``pan_speed`` pixels per frame, a vertical tilt of ``tilt_speed`` pixels per frame
    with a gentle bob (so content moves across near-horizontal wires too), and a
    zoom that changes the scale by ``zoom`` over the clip.

    Args:
        num_frames: T.
        height, width: frame size in pixels.
        seed: everything (texture, motion phase) follows from it.
        pan_speed: mean horizontal camera speed, output pixels per frame.
        tilt_speed: vertical camera speed (positive: the camera moves down), pixels per frame.
        zoom: relative scale change across the clip (0 disables the zoom).
    Returns:
        (T, H, W, 3) uint8 RGB.
    """
    if num_frames < 1 or height < 8 or width < 8:
        raise ValueError(f"need num_frames >= 1 and a frame of at least 8x8, got {num_frames}x{height}x{width}")
    rng = np.random.default_rng(seed)
    travel = abs(pan_speed) * max(num_frames - 1, 0)
    canvas_w = int(np.ceil(width * (1 + zoom) + travel + width * 0.25)) + 8
    drop = abs(tilt_speed) * max(num_frames - 1, 0)
    canvas_h = int(np.ceil(height * (1 + zoom) * 1.25 + drop)) + 8
    canvas = (render_canvas(canvas_h, canvas_w, seed=int(rng.integers(0, 2**31))) * 255.0).astype(np.float32)
    phase = float(rng.uniform(0, 2 * np.pi))
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    for t in range(num_frames):
        u = t / max(num_frames - 1, 1)
        scale = 1.0 + zoom * (0.5 - 0.5 * np.cos(np.pi * u))  # eases in and out
        # canvas position of the frame's top-left corner: steady pan and tilt plus a slow wobble
        start = 4.0 if pan_speed >= 0 else 4.0 + travel
        ox = start + pan_speed * t + 0.6 * np.sin(2 * np.pi * t / 37.0 + phase)
        top = 4.0 + height * 0.1 + (0.0 if tilt_speed >= 0 else drop)
        oy = top + tilt_speed * t + 2.0 * np.sin(2 * np.pi * t / 29.0 + phase)
        # output (x, y) -> canvas (ox + x / scale, oy + y / scale); zoom about the frame centre
        cx, cy = width / 2.0, height / 2.0
        m = np.array([[1 / scale, 0, ox + cx - cx / scale],
                      [0, 1 / scale, oy + cy - cy / scale]], np.float64)
        frame = cv2.warpAffine(canvas, m, (width, height), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_REFLECT)
        frames[t] = np.clip(np.rint(frame), 0, 255).astype(np.uint8)
    return frames


# ----------------------------------------------------------------------------- wires


def _wire_curve(width: int, height: int, y_left: float, y_right: float, sag: float, n: int = 96) -> np.ndarray:
    """Points of a catenary spanning the frame (beyond both edges).

    ``sag`` is the depth in pixels of the curve below the chord at mid-span.

    Returns:
        (n, 2) float64 (x, y) in pixels.
    """
    xs = np.linspace(-0.1 * width, 1.1 * width, n)
    u = (xs - xs[0]) / (xs[-1] - xs[0]) * 2.0 - 1.0  # [-1, 1] along the span
    k = 1.6  # catenary stiffness: cosh(k u) - 1 normalised so the mid-span depth is `sag`
    droop = sag * (1.0 - (np.cosh(k * u) - 1.0) / (np.cosh(k) - 1.0))
    chord = y_left + (y_right - y_left) * (u + 1.0) / 2.0
    return np.stack([xs, chord + droop], axis=1)


def _wire_coverage(height: int, width: int, points: np.ndarray, thickness: float) -> np.ndarray:
    """Anti-aliased coverage of a polyline of the given thickness (pixels).

    Drawn on a canvas ``_WIRE_SUPERSAMPLE`` times larger, then area-averaged.

    Returns:
        (height, width) float32 in [0, 1].
    """
    s = _WIRE_SUPERSAMPLE
    big = np.zeros((height * s, width * s), np.uint8)
    shift = 4  # fixed-point sub-pixel bits of cv2's drawing
    pts = np.rint(points * s * (1 << shift)).astype(np.int32).reshape(-1, 1, 2)
    cv2.polylines(big, [pts], False, 255, thickness=max(1, int(round(thickness * s))), lineType=cv2.LINE_8,
                  shift=shift)
    return cv2.resize(big, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def draw_wires(frames: np.ndarray, num_wires: int = 2, thickness_range: tuple[float, float] = (2.0, 6.0),
               seed: int = 0, grow: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Draw thin sagging wires across every frame, swaying over time.

    Each wire is a catenary from beyond the left edge to beyond the right edge,
    dark grey, anti-aliased (4x supersampled coverage), with a thickness drawn from
    ``thickness_range`` (pixels). Over time its sag breathes and it drifts up and
    down by a few pixels (slow sinusoids with random phases).

    Args:
        frames: (T, H, W, 3) uint8 RGB.
        num_wires: how many wires (1 to 3 looks natural; any number works).
        thickness_range: min and max wire thickness in pixels.
        seed: all wire parameters follow from it.
        grow: the mask is the set of pixels with any wire coverage, dilated by this
            many pixels (1 covers the outermost anti-aliasing fringe generously).
    Returns:
        frames_with_wires: (T, H, W, 3) uint8, a new array.
        wire_masks: (T, H, W) bool; with ``grow=0`` exactly the pixels the wires
            cover (every changed pixel is inside it).
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    rng = np.random.default_rng(seed)
    t_len, h, w = frames.shape[:3]
    wires = []
    for i in range(num_wires):
        band = (i + 0.5) / max(num_wires, 1)  # spread the wires vertically
        y_mid = h * (0.12 + 0.5 * band) + rng.uniform(-0.05, 0.05) * h
        wires.append(dict(
            y_left=y_mid + rng.uniform(-0.12, 0.12) * h,
            y_right=y_mid + rng.uniform(-0.12, 0.12) * h,
            sag=rng.uniform(0.06, 0.16) * h,
            thickness=rng.uniform(*thickness_range),
            colour=np.array([rng.uniform(25, 80)] * 3, np.float32) + rng.uniform(-6, 6, 3).astype(np.float32),
            sway_amp=rng.uniform(1.0, 4.0),
            sway_period=rng.uniform(18.0, 40.0),
            breathe=rng.uniform(0.03, 0.12),
            phase=rng.uniform(0, 2 * np.pi),
        ))
    out = frames.astype(np.float32)
    masks = np.zeros((t_len, h, w), bool)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)) if grow > 0 else None
    for t in range(t_len):
        for wire in wires:
            angle = 2 * np.pi * t / wire["sway_period"] + wire["phase"]
            drift = wire["sway_amp"] * np.sin(angle)
            sag = wire["sag"] * (1.0 + wire["breathe"] * np.sin(1.7 * angle))
            pts = _wire_curve(w, h, wire["y_left"] + drift, wire["y_right"] + 0.6 * drift, sag)
            alpha = _wire_coverage(h, w, pts, wire["thickness"])
            _blend(out[t], wire["colour"], alpha)
            masks[t] |= alpha > 0
        if kernel is not None:
            masks[t] = cv2.dilate(masks[t].astype(np.uint8), kernel).astype(bool)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8), masks


# ----------------------------------------------------------------------------- masks


def static_box_mask(num_frames: int, height: int, width: int, box: tuple[int, int, int, int] | None = None,
                    seed: int = 0) -> np.ndarray:
    """The same rectangle in every frame.

    Args:
        box: (x, y, w, h) in pixels; None picks a box of about 1/5 x 1/4 of the frame
            near the centre (position from ``seed``).
    Returns:
        (T, H, W) bool.
    """
    if box is None:
        rng = np.random.default_rng(seed)
        bw, bh = max(2, width // 5), max(2, height // 4)
        x = int(rng.integers(width // 4, max(width // 4 + 1, width - width // 4 - bw)))
        y = int(rng.integers(height // 4, max(height // 4 + 1, height - height // 4 - bh)))
        box = (x, y, bw, bh)
    x, y, bw, bh = box
    mask = np.zeros((height, width), bool)
    mask[max(0, y):y + bh, max(0, x):x + bw] = True
    return np.broadcast_to(mask, (num_frames, height, width)).copy()


def logo_mask(num_frames: int, height: int, width: int, text: str = "TV", corner: str = "tr") -> np.ndarray:
    """A static broadcast-logo-like shape (a ring and bold text) in a corner.

    Args:
        corner: 'tl', 'tr', 'bl' or 'br'.
    Returns:
        (T, H, W) bool.
    """
    size = max(12, min(height, width) // 6)
    logo = np.zeros((size, size * 2), np.uint8)
    cv2.circle(logo, (size // 2, size // 2), size // 2 - 2, 255, max(2, size // 10))
    scale = size / 40.0
    cv2.putText(logo, text, (size, int(size * 0.72)), cv2.FONT_HERSHEY_SIMPLEX, scale, 255,
                max(2, int(round(scale * 3))), cv2.LINE_8)
    margin = max(4, size // 4)
    lh, lw = logo.shape
    lw = min(lw, width - 2 * margin)
    lh = min(lh, height - 2 * margin)
    y = margin if corner[0] == "t" else height - margin - lh
    x = margin if corner[1] == "l" else width - margin - lw
    mask = np.zeros((height, width), bool)
    mask[y:y + lh, x:x + lw] = logo[:lh, :lw] > 0
    return np.broadcast_to(mask, (num_frames, height, width)).copy()


def moving_object_mask(num_frames: int, height: int, width: int, seed: int = 0,
                       size: float = 0.35) -> np.ndarray:
    """A person-like blob (head, torso, legs) walking across the frame.

    Args:
        size: blob height as a fraction of the frame height.
    Returns:
        (T, H, W) bool; the blob moves left to right (or right to left, by seed) with a
        slight bob and leg swing.
    """
    rng = np.random.default_rng(seed)
    body_h = max(8.0, size * height)
    direction = 1 if rng.random() < 0.5 else -1
    x_start, x_end = 0.2 * width, 0.8 * width
    if direction < 0:
        x_start, x_end = x_end, x_start
    foot_y = height * rng.uniform(0.7, 0.85)
    masks = np.zeros((num_frames, height, width), bool)
    for t in range(num_frames):
        u = t / max(num_frames - 1, 1)
        cx = x_start + (x_end - x_start) * u
        bob = 0.03 * body_h * np.sin(2 * np.pi * t / 8.0)
        swing = 0.12 * body_h * np.sin(2 * np.pi * t / 16.0)
        img = np.zeros((height, width), np.uint8)
        head_r = int(round(0.11 * body_h))
        hip_y = foot_y - 0.45 * body_h + bob
        cv2.circle(img, (int(cx), int(foot_y - 0.88 * body_h + bob)), max(2, head_r), 255, -1)
        cv2.ellipse(img, (int(cx), int(foot_y - 0.62 * body_h + bob)),
                    (max(2, int(0.17 * body_h)), max(2, int(0.22 * body_h))), 0, 0, 360, 255, -1)
        leg_w = max(2, int(0.1 * body_h))
        for sign in (-1, 1):
            cv2.line(img, (int(cx), int(hip_y)), (int(cx + sign * swing), int(foot_y)), 255, leg_w)
        masks[t] = img > 0
    return masks


def blank(frames: np.ndarray, masks: np.ndarray, value: int | float = 0) -> np.ndarray:
    """A copy of ``frames`` with masked pixels set to ``value``.

    Args:
        frames: (T, H, W, C) any dtype.
        masks: (T, H, W) or (H, W) bool.
    Returns:
        same shape and dtype as ``frames``.
    """
    out = np.array(frames, copy=True)
    m = np.broadcast_to(np.asarray(masks, bool), out.shape[:3])
    out[m] = value
    return out
