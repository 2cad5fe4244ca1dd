"""Following a wire from frame to frame.

Per frame and wire: stations every ``step`` px along the curve predicted from the
neighbouring frame (the previous curve plus its recent motion, ``motion.velocity``: a wire
sways and drifts on its own, so its own motion, not the background's, predicts it), the line
response of a strip across the curve (``ridge.strip_response``) less the lines moving with the
background where the wire was moving across it (``background.py``), the motion with the most support
along the whole curve within ``search_radius`` (``motion.py``), the strongest response
within ``motion_radius`` of that motion at each station, then a robust fit (iteratively reweighted least
squares, Tukey's biweight with a shrinking scale) pulled weakly towards the
prediction where nothing was found, and a second, narrow search (``refine_radius``)
around that fit to settle the curve to ~0.3 px.

Confidence is the share of the stations inside the frame where a response of at
least ``found_ratio`` of the wire's running strength lies within ``inlier_px`` of
the fitted curve. Below ``min_confidence`` the frame keeps the curve carried from
its neighbour and is reported.

A frame whose whole-curve support drops below ``doubt_ratio`` of its running value keeps
its fit but is reported as doubtful, unless its motion leaves the prediction by more than
``doubt_jump`` px: then the curve is carried (a weaker line nearby, not the wire). The curves
are then smoothed in time (``smooth.py``).

From the keyframe on, the wire's own grey sets the polarity each station shows (a dark wire over
something darker is a bright line there), and a line darker than the wire (brighter, for a bright
wire) is not taken for it (``appearance.py``, ``opaque_check``): where the wire crosses a surface of
its own grey it vanishes, and the edges beside it answer instead.

At a keyframe the wire is looked for within ``click_radius`` of the clicked polyline and pulled
towards it (``click_weight``) where it is not seen: a thin wire can vanish over a surface of its
own grey while a wide stripe of its polarity runs a few px away. The wire's width measured there
sets the filter scales used from then on (``scale_lock``) and the widest line a station may
count (``width_gate``).

A whole clip, from one or more keyframes: ``clip.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from . import appearance
from .background import Veto, make_veto, normal_shift, to_uint8
from .curve import Axes, Curve, fit_curve, frame_span
from .motion import Motion, best_motion, velocity
from .observe import merge, motion_fit, observe, robust_fit
from .ridge import BRIGHT, DARK, SIGMAS, sample_strip, scales_for
from .stats import median


@dataclass(frozen=True)
class TrackSettings:
    """Tracking settings (pixels unless stated)."""

    search_radius: int = 14  # per-frame search across the predicted curve; sway up to ~10 px/frame
    refine_radius: int = 3
    key_radius: int = 8  # around a keyframe's clicked polyline (points within ~5 px)
    # The wire's polarity (dark or bright) is the one whose line nearest the clicks answers more strongly:
    # the responses across each station are weighted by a Gaussian of this many px around the clicked
    # polyline before the strongest is taken. Unweighted, a bright wire 4-5 px beside a clicked dark one
    # decided it (3-35 % coverage); with the keyframe revisit below, generated set 1 (``quality.wires``)
    # 17 -> 13 cases under target and the night set's mean coverage 86.4 -> 89.6 % (revisit alone: 17, 86.4 %).
    polarity_sigma: float = 2.0
    # Within the clicked span the keyframe's wire is looked for only this close to the clicked
    # polyline: a 1-px bright wire over a white board is invisible there, and at 8 px the fit
    # locked onto the board's 6-px bright edge stripe instead (8 px off, coverage 8-13 %).
    click_radius: int = 4
    # prior weight of the clicked polyline where the wire is not seen there (``prior_weight`` elsewhere):
    # a few stations on a stray line 4 px off otherwise bent the fit 7 px away from the clicks
    click_weight: float = 0.5
    step: float = 4.0  # between stations along the wire
    flank: int = 10  # strip columns beyond the search, for the filter and the width
    found_ratio: float = 0.3  # of the running strength, for a station to count as found
    inlier_px: float = 2.0
    min_confidence: float = 0.5  # of the stations inside the frame
    prior_weight: float = 0.05  # of the prediction against one found station
    damping: float = 1.0  # of the recent motion (``velocity_frames``) carried into the prediction
    end_pad: float = 8.0  # the mask runs this far past the last station seen
    key_growth: float = 48.0  # how far each keyframe round reaches past the seen span
    key_rounds: int = 16
    # A wire seldom ends inside the shot; where it fades into the background near an end
    # (a dark wire over a dark sign) the mask still follows its continuation to the edge.
    to_edges: bool = True
    # The motion is chosen by the support along the whole moved curve (``motion.py``), then
    # the stations are searched within ``motion_radius`` of it; False: per-station search only.
    whole_curve: bool = True
    motion_radius: int = 5
    # a frame whose whole-curve support falls below this share of its running value is
    # reported as doubtful (its fit is kept): measured 0.48-0.74 where the harness's thin wire
    # fades over a dark crowd, 0.61-1.5 on frames tracked within 1 px
    doubt_ratio: float = 0.8
    # a tracked frame whose curve has tilted since the keyframe by more than this is reported as doubtful
    # (px at the ends of the part in the frame: the tilt term of a shift + tilt + swing fitted to the
    # change; one end held while the other moves 16 px is 8): on the independent bright-wire
    # set it lists 12 of the 21 frames under 97 % coverage that nothing else listed and no new frame at
    # >= 99.5 %; the harness's wires never tilt, a real one tilts with a camera roll (1.4 deg across
    # 640 px) or a moving anchor, when the list over-reports. The fit is kept: carrying such frames from
    # the neighbour instead fixed 2 of 32 held-out bright clips but lost a wire turning about one end
    # (83-88 % mean coverage against 100 %)
    tilt_doubt: float = 8.0
    # The keyframe is found again from the frame after it, by the per-frame search, once that frame is
    # tracked: clicks up to 5 px off the wire put the first fit (searched only ``click_radius`` from the
    # clicks) as far off, while the next frame's search finds the wire. Harness with clicks +-5 px: 6 -> 1
    # cases under target (keyframe coverage 74-95 % before); +-2 px: unchanged.
    revisit_key: bool = True
    click_tolerance: float = 8.0  # px: a revisited keyframe's curve stays this close to every click
    smooth_radius: int = 2  # frames either side of the temporal smoothing of the curves (``smooth.py``)
    sigmas: tuple[float, ...] = SIGMAS
    # in the per-frame fit, responses on lines wider than this times the keyframe's width + 1 px do
    # not count (0: off): on the independent bright-wire set (64 clips) frames under 97 % coverage
    # 55 -> 38, those not reported 43 -> 21; a board's foot line held a 1-px wire's end in place
    width_gate: float = 3.0
    # stations whose response was dropped by ``width_gate`` are left out of the confidence (a wide line
    # over the wire hides it there): a 1.5-px wire over a dark crowd was otherwise carried 3 frames, 81 %
    gate_unjudged: bool = True
    # After the keyframe only the scales up to this many above the wire's own (``ridge.scales_for``)
    # are searched: a thin wire's filter then barely answers wide bright bands and board edges.
    # Independent 1-1.5 px bright-wire set (64 clips): 19 under target with every scale, 13 with one above.
    scale_lock: int = 1  # -1: every scale
    # The key width that sets the scales and the gate is this quantile of the widths measured along the
    # keyframe's fit (the drawn width stays their median): where a 1.5-px wire is invisible over a board,
    # that end's stations read the board's 6-8 px stripe and the median read 4 px (scales and gate for a
    # 4-px line). Independent bright set: mean coverage 98.2 -> 99.9 % with the motion settings below.
    key_width_quantile: float = 0.25
    # the predicted motion: the slope of a line in time through the curves of the last ``velocity_frames``
    # tracked frames (2: the last motion alone), times ``damping``. With the rest as set here, the last
    # motion times 0.6 instead: harness `s0-3` 98.57 / 91.24 % (mean / worst frame) against 99.82 / 98.80,
    # clips under target 10 against 7 (independent bright set), 7 against 4 (held-out bright set)
    velocity_frames: int = 4
    # Lines moving with the background (``background.py``): at stations where the wire moved across the
    # background by more than ``bg_relative`` px last frame, responses within ``bg_reach`` px of where the
    # background under the last curve has moved to are vetoed. The background's motion is measured
    # ``bg_offset`` + the key width px either side of the wire. Without: `s0-3` 98.79 / 94.59 %, held-out
    # bright set 6 clips under target and 15 frames under 97 % not reported (4 and 4 with it).
    bg_veto: bool = True
    bg_offset: float = 8.0
    bg_relative: float = 2.0
    bg_reach: float = 1.5
    # A doubtful frame (``doubt_ratio``) whose chosen motion leaves the prediction by more than this many px
    # (mean across the wire) is not taken: the wire is carried instead. Where a wire fades or leaves the
    # frame, a weaker line of its polarity within the search took it 6-16 px off for good (coverage of the
    # worst frame 0-57 %); at 4 px and above no frame of a case it did not fix got worse with clicks +-2 px,
    # at 3 px and below a swaying wire was lost. Generated sets (``quality.wires``, clicks +-2 px): mean
    # coverage seed 1 96.59 -> 97.17 %, seed 2 98.14 -> 98.35 %, night 89.61 -> 89.74 %; with clicks
    # +-5 px four cases gained (worst frames 0 -> 95 %, 60 -> 95 %) and one lost (night `n2`, 96 -> 92 %
    # mean), whose track was already 2-3 px off when the rejected jump would have brought it back.
    doubt_jump: float = 5.0
    # The wire's own grey is measured at the keyframe (``appearance.py``). From then on a station whose background
    # is beyond that grey by more than the tolerance (``core_share`` of the wire's median contrast there, at
    # least ``core_floor`` grey levels) is searched for a line of the other polarity (a white wire over white
    # ice is a dark line there), and a line whose core is beyond the wire's grey by more than the tolerance
    # (darker than a dark wire) is not the wire: its station is not judged, and it lends the whole-curve motion
    # no support. Generated sets (``quality.wires``), cases under the coverage targets (mean coverage), clicks
    # +-2 px: seed 1 8 -> 8 (97.40 -> 98.02 %), seed 2 9 -> 7 (98.62 -> 98.69 %), night 11 -> 5 (90.01 ->
    # 97.13 %); held out, seed 4 10 -> 7 (97.06 -> 98.79 %), night seed 5 13 -> 6 (89.37 -> 98.07 %); clicks
    # +-5 px: seed 1 10 -> 10 (96.79 -> 97.52 %), seed 2 12 -> 10, night 12 -> 5. The foreign-line check alone:
    # seed 1 7, seed 2 8, night 11 (95.88 %); share 0.15 or 0.4 gave the same counts. Dropping instead every
    # station whose background was near the wire's grey lost wires that still showed faintly (worst frames 0 %).
    opaque_check: bool = True
    core_share: float = 0.25
    core_floor: float = 8.0


@dataclass(frozen=True)
class WireFit:
    """A wire in one frame: its curve, width (px), confidence (0..1, nan when out of frame),
    whether the curve was carried from a neighbour, its response strength (grey levels),
    the span of ``u`` where it was found, whether the fit is doubtful (``doubt_ratio``), whether it
    runs along another wire's curve, whether it was seen over too little of it (``seen.py``), and for how
    many frames in a row its curve has been carried (0 where the wire was found; ``render.carry_spread``)."""

    curve: Curve
    width: float
    confidence: float
    carried: bool
    strength: float
    seen: tuple[float, float]  # span of u where the wire was found
    doubtful: bool = False  # tracked, but with much less support along the curve than before
    shared: bool = False  # on another wire's line over most of its length (``overlap.py``)
    partly_seen: bool = False  # seen over less than ``seen.SEEN_ENOUGH`` of its part in the frame
    carried_for: int = 0  # frames in a row carried from a neighbour, this one included


def _stations(curve: Curve, shape: tuple[int, int], s: TrackSettings, limit: tuple[float, float] | None = None
              ) -> np.ndarray:
    a, b = frame_span(curve, shape[0], shape[1])
    if not np.isfinite(a):
        return np.empty(0)
    if limit is not None:
        a, b = max(a, limit[0]), min(b, limit[1])
    if b - a < 2 * s.step:
        return np.empty(0)
    return np.arange(a, b + 1e-6, s.step)


def _visible_span(curve: Curve, inliers_u: np.ndarray, shape: tuple[int, int], s: TrackSettings
                  ) -> tuple[float, float]:
    """Where the mask runs: to the frame edges (``to_edges``), else the inliers' span padded by
    ``end_pad`` and run past the edge when it ends near one."""
    a, b = frame_span(curve, shape[0], shape[1])
    if s.to_edges:
        return a - 2 * s.flank, b + 2 * s.flank
    first, last = float(inliers_u.min()), float(inliers_u.max())
    reach = s.end_pad + 3 * s.step
    start = a - 2 * s.flank if first - a < reach else first - s.end_pad
    end = b + 2 * s.flank if b - last < reach else last + s.end_pad
    return start, end


def _whole_curve_motion(grey: np.ndarray, curve: Curve, u: np.ndarray, shift: np.ndarray | None, polarity: int,
                        ref: float, s: TrackSettings, radius: int | None = None, veto: Veto | None = None,
                        look: appearance.Appearance | None = None):
    """The best whole-curve motion (``motion.best_motion``) across the predicted curve, or None; ``look``:
    the polarity each station shows (``appearance.shown_polarity``) is searched, and lines unlike the wire
    (``appearance.unlike_columns``) lend no support."""
    h, w = grey.shape
    centres = curve.xy(u)
    normals = curve.normals(u)
    if shift is not None:
        centres = centres + shift[:, None] * normals
    half = s.search_radius + s.flank
    strip = sample_strip(grey, centres, normals, np.arange(-half, half + 1, dtype=np.float64))
    shown = appearance.shown_polarity(strip, polarity, look)
    gated = appearance.line_response(strip, shown, s.sigmas)
    if veto is not None:
        gated = veto.apply(gated, u, curve.v(u) + (0.0 if shift is None else shift), half)
    if look is not None:
        gated = np.where(appearance.unlike_columns(strip, shown, look), 0.0, gated)
    inside = (centres[:, 0] >= 0) & (centres[:, 0] <= w - 1) & (centres[:, 1] >= 0) & (centres[:, 1] <= h - 1)
    return best_motion(gated, half, s.search_radius if radius is None else radius, inside, ref)


def _coast(prev: WireFit, before: WireFit | None, s: TrackSettings) -> Curve:
    """The curve carried into a frame where the wire is not found: the last frame's, moved on
    by its last motion times ``damping`` (a wire leaving the frame keeps leaving; one that fades
    while swaying settles where it was)."""
    if before is None:
        return prev.curve
    c = prev.curve
    grid = np.linspace(c.lo, c.hi, max(16, int((c.hi - c.lo) / s.step)))
    v = c.v(grid) + s.damping * (c.v(grid) - before.curve.v(grid))
    return fit_curve(c.axes, grid, v, np.ones_like(grid), c.start, c.end, c.lo, c.hi)


def _carried(prev: WireFit, curve: Curve, confidence: float) -> WireFit:
    """A frame where the wire is not found: ``curve`` carried on from ``prev``, one more frame in a row."""
    return WireFit(curve, prev.width, confidence, True, prev.strength, prev.seen, carried_for=prev.carried_for + 1)


class WireTracker:
    """Finds one wire in successive frames, from one keyframe (polarity and strength are set there)."""

    def __init__(self, settings: TrackSettings, axes: Axes):
        self.s = settings
        self.axes = axes
        self.polarity = DARK
        self.ref = 1.0
        self.key_fraction = 1.0  # share of stations found at the keyframe: confidence 1 means "as well as there"
        self.key_width: float | None = None  # measured at the keyframe
        self.narrow_width = 1.0  # low quantile of the widths along the last fit (``key_width_quantile``)
        self.key_curve: Curve | None = None
        self.recent: list[WireFit] = []  # the last fits of the current run, for the predicted motion
        self.key8: np.ndarray | None = None  # 8-bit keyframe and last frame, for the background's motion
        self.last8: np.ndarray | None = None
        self.last_bg: tuple[np.ndarray, np.ndarray] | None = None  # (stations, its displacement) last frame
        self.support = 0.0  # running whole-curve support (``motion.Motion.support``) of the frames tracked
        self.look: appearance.Appearance | None = None  # the wire's grey, from the keyframe (``opaque_check``)

    def start(self, grey: np.ndarray, points: np.ndarray) -> WireFit:
        """Fit the wire near a keyframe's clicked ``points`` (N, 2) and follow it to its ends.

        Args:
            grey: (H, W) float32 grey levels 0..255.
        """
        s = self.s
        self.key8 = to_uint8(grey) if s.bg_veto else None
        uv = self.axes.to_uv(points)
        uv = uv[np.argsort(uv[:, 0])]
        a, b = float(uv[0, 0]), float(uv[-1, 0])
        curve = fit_curve(self.axes, uv[:, 0], uv[:, 1], np.ones(len(uv)), a, b)
        carried = WireFit(curve.with_span(a, b), 1.0, 0.0, True, 0.0, (a, b))
        u = _stations(curve, grey.shape, s, (a, b))
        if len(u) < 3:
            return carried
        strengths = {}
        for polarity in (DARK, BRIGHT):
            obs = observe(grey, curve, u, s.key_radius, polarity, s, focus=s.polarity_sigma)
            strengths[polarity] = float(np.median(obs.peak[obs.inside])) if obs.inside.any() else 0.0
        self.polarity = max(strengths, key=strengths.get)
        self.ref = strengths[self.polarity]
        if self.ref <= 0:
            return carried
        span, radius, fit, clicked = (a, b), s.key_radius, None, curve
        for _ in range(s.key_rounds):  # grow from the clicked span towards the wire's ends
            u = _stations(curve, grey.shape, s, (span[0] - s.key_growth, span[1] + s.key_growth))
            if len(u) < 3:
                break
            within = (u >= a) & (u <= b)
            obs = observe(grey, clicked, u[within], s.click_radius, self.polarity, s, interior=True)
            if not within.all():
                obs = merge(obs, observe(grey, curve, u[~within], radius, self.polarity, s))
            prior = np.where((obs.u >= a) & (obs.u <= b), s.click_weight, s.prior_weight)
            got = robust_fit(obs, self.axes, self.ref, radius, s, prior)
            if got is None:
                break
            fit = self._finish(grey, got[0], None, (clicked, a, b))
            curve = fit.curve
            new_span = fit.seen
            radius = max(s.refine_radius + 2, radius // 2)
            if abs(new_span[0] - span[0]) < s.step and abs(new_span[1] - span[1]) < s.step:
                break
            span = (min(span[0], new_span[0]), max(span[1], new_span[1]))
        if fit is None:
            return carried
        u = _stations(curve, grey.shape, s)
        self.key_width, self.key_curve = self.narrow_width, fit.curve
        if s.scale_lock >= 0:
            self._lock_scales(grey, curve, u, self.key_width)
            s = self.s
        if s.opaque_check:
            self.look = appearance.on_keyframe(grey, curve, u, self.polarity, self.ref, self.narrow_width, s)
        obs = observe(grey, curve, u, s.search_radius, self.polarity, s)
        got = robust_fit(obs, self.axes, self.ref, s.search_radius, s)
        if got is not None:
            self.key_fraction = max(float(got[1].sum()) / max(int(obs.inside.sum()), 1), 0.05)
        if s.whole_curve:
            still = _whole_curve_motion(grey, fit.curve, u, None, self.polarity, self.ref, s, radius=0)
            self.support = still.support if still is not None else 0.0
        return WireFit(fit.curve, fit.width, 1.0, False, fit.strength, fit.seen)

    def _lock_scales(self, grey: np.ndarray, curve: Curve, u: np.ndarray, width: float) -> None:
        """Keep the scales a wire ``width`` px wide needs (``scale_lock``) and rescale the running
        strength by how the wire answers them against every scale, at the keyframe: over texture the
        strongest answer near an unseen wire came from a wider scale, and the strength set from
        every scale left a locked 1.5-px wire below ``found_ratio`` (carried, 3-7 px off)."""
        s = self.s
        locked = replace(s, sigmas=scales_for(width, s.scale_lock, s.sigmas))
        if locked.sigmas != s.sigmas and len(u) >= 3:
            before = observe(grey, curve, u, s.refine_radius, self.polarity, s)
            after = observe(grey, curve, u, s.refine_radius, self.polarity, locked)
            if before.inside.any():
                full = float(np.median(before.peak[before.inside]))
                if full > 0:
                    self.ref *= float(np.clip(np.median(after.peak[after.inside]) / full, 0.25, 1.0))
        self.s = locked

    def _gate(self, obs):
        """Responses on a line much wider than the wire at its keyframe (``width_gate``) do not count;
        returns the observation and the (N,) stations where one was dropped."""
        if self.s.width_gate <= 0 or self.key_width is None:
            return obs, np.zeros(len(obs.u), bool)
        wide = obs.widths > self.s.width_gate * self.key_width + 1.0
        return replace(obs, peak=np.where(wide, 0.0, obs.peak)), wide

    def _tilted(self, curve: Curve, u: np.ndarray) -> bool:
        """Whether ``curve`` has turned by more than ``tilt_doubt`` px across stations ``u`` since the keyframe
        (the tilt of a shift + tilt + swing fitted to the difference)."""
        if self.key_curve is None or self.s.tilt_doubt <= 0 or len(u) < 3:
            return False
        t = np.linspace(-1.0, 1.0, len(u))
        basis = np.stack([np.ones_like(t), t, 1.0 - t ** 2], axis=1)
        coef, *_ = np.linalg.lstsq(basis, curve.v(u) - self.key_curve.v(u), rcond=None)
        return bool(abs(coef[1]) > self.s.tilt_doubt)

    def _doubted(self, motion: Motion) -> bool:
        """Whether a motion's support along the curve fell below ``doubt_ratio`` of its running value."""
        return bool(motion.support < self.s.doubt_ratio * self.support)

    def _jumped(self, motion: Motion) -> bool:
        """Whether a motion is a doubtful jump (``doubt_jump``): little support, far from the prediction."""
        s = self.s
        return s.doubt_jump > 0 and self._doubted(motion) and abs(float(np.mean(motion.shift))) > s.doubt_jump

    def _veto(self, grey: np.ndarray, prev: WireFit, before: WireFit | None, u: np.ndarray) -> Veto | None:
        """Where a line moving with the background lies this frame, at stations where the wire was
        moving across it (``background.py``); also records the background's motion."""
        s = self.s
        if not s.bg_veto or self.last8 is None:
            return None
        now = to_uint8(grey)
        bg = normal_shift(self.last8, now, prev.curve, u, s.bg_offset + (self.key_width or 1.0))
        veto = None
        if before is not None and not before.carried and not prev.carried and self.last_bg is not None:
            own = prev.curve.v(u) - before.curve.v(u)
            lu, lb = self.last_bg
            ok = np.isfinite(lb)
            if ok.sum() >= 2:
                bg_last = np.interp(u, lu[ok], lb[ok], left=np.nan, right=np.nan)
                veto = make_veto(u, prev.curve.v(u), bg, own, bg_last, s.bg_relative, s.bg_reach)
        self.last8, self.last_bg = now, (u, bg)
        return veto

    def step(self, grey: np.ndarray, prev: WireFit, before: WireFit | None) -> WireFit:
        """The wire in the next frame (either direction) from the last fits (``before`` None: the
        first step from a keyframe)."""
        if before is None:
            self.recent, self.last8, self.last_bg = [prev], self.key8, None
        fit = self._step(grey, prev, before)
        self.recent = (self.recent + [fit])[-self.s.velocity_frames:]
        return fit

    def _step(self, grey: np.ndarray, prev: WireFit, before: WireFit | None) -> WireFit:
        s = self.s
        u = _stations(prev.curve, grey.shape, s)
        if len(u) < 3:  # out of the frame: carry the curve, no judgement
            return _carried(prev, prev.curve, float("nan"))
        shift = None
        veto = self._veto(grey, prev, before, u)
        if before is not None and not before.carried:
            shift = s.damping * velocity(self.recent, u, s.velocity_frames)
            shift = np.clip(shift, -s.search_radius / 2, s.search_radius / 2)
        radius, motion = s.search_radius, None
        if s.whole_curve:
            motion = _whole_curve_motion(grey, prev.curve, u, shift, self.polarity, self.ref, s, veto=veto,
                                         look=self.look)
            if motion is not None and self._jumped(motion):  # what it found is another line: not the wire
                return _carried(prev, _coast(prev, before, s), 0.0)
            if motion is not None:
                shift = motion.shift if shift is None else shift + motion.shift
                radius = s.motion_radius
        obs, wide = self._gate(observe(grey, prev.curve, u, radius, self.polarity, s, shift, veto=veto,
                                       look=self.look))
        got = motion_fit(obs, prev.curve, self.ref, radius, s)
        # judged where the wire was seen last frame: its continuation past there may miss it
        seen = obs.inside & (u >= prev.seen[0] - s.step) & (u <= prev.seen[1] + s.step)
        if not seen.any():
            seen = obs.inside
        if s.gate_unjudged and (seen & ~wide).sum() >= 3:  # a wide line over the wire hides it: not judged there
            seen = seen & ~wide
        if (seen & ~obs.unlike).sum() >= 3:  # nor where the only line is unlike the wire
            seen = seen & ~obs.unlike
        confidence = 0.0
        if got is not None:
            confidence = min(1.0, float((got[1] & seen).sum()) / max(int(seen.sum()), 1) / self.key_fraction)
        if got is None or confidence < s.min_confidence:
            return _carried(prev, _coast(prev, before, s), confidence)
        fit = self._finish(grey, got[0], prev.width, veto=veto)
        doubtful = self._tilted(fit.curve, u)
        if motion is not None:
            doubtful = doubtful or self._doubted(motion)
            self.support = 0.8 * self.support + 0.2 * motion.support
        return WireFit(fit.curve, fit.width, confidence, False, fit.strength, fit.seen, doubtful)

    def _finish(self, grey: np.ndarray, curve: Curve, prior_width: float | None,
                clicked: tuple[Curve, float, float] | None = None, veto: Veto | None = None) -> WireFit:
        """Narrow search around ``curve``: the final curve, its span, width, strength and seen span.
        ``clicked``: a keyframe's clicked curve and span, which responses farther than
        ``click_radius`` from it do not count within."""
        s = self.s
        u = _stations(curve, grey.shape, s)
        obs, prior = None, None
        if len(u) >= 3:
            obs = observe(grey, curve, u, s.refine_radius, self.polarity, s, symmetric=False,
                           interior=clicked is not None, veto=veto, look=self.look)
        if obs is not None and clicked is not None:
            near, a, b = clicked
            within = (obs.u >= a) & (obs.u <= b)
            far = within & (np.abs(obs.uv[:, 1] - near.v(obs.uv[:, 0])) > s.click_radius)
            obs = replace(obs, peak=np.where(far, 0.0, obs.peak))
            prior = np.where(within, s.click_weight, s.prior_weight)
        got = robust_fit(obs, self.axes, self.ref, s.refine_radius, s, prior) if obs is not None else None
        if got is None:
            seen = (curve.lo, curve.hi)
            start, end = _visible_span(curve, np.array(seen), grey.shape, s)
            return WireFit(curve.with_span(start, end), prior_width or 1.0, 1.0, False, self.ref, seen)
        curve, inliers = got
        seen_u = obs.uv[inliers, 0]
        start, end = _visible_span(curve, seen_u, grey.shape, s)
        widths = obs.widths[inliers]
        widths = widths[np.isfinite(widths)]
        width = median(widths) if len(widths) else (prior_width or 1.0)
        self.narrow_width = float(np.quantile(widths, s.key_width_quantile)) if len(widths) else width
        if prior_width is not None:  # light temporal smoothing: a wire's width does not jump
            width = 0.7 * prior_width + 0.3 * width
        strength = median(obs.peak[inliers])
        self.ref = 0.8 * self.ref + 0.2 * strength
        return WireFit(curve.with_span(start, end), width, 1.0, False, strength,
                       (float(seen_u.min()), float(seen_u.max())))
