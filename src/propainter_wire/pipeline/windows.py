"""Index schedulers: which frames each stage processes together.

Pure functions of the clip length and the window settings, with the reference
inference's semantics. Each is property-tested: every frame covered, indices in
range, windows as specified.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Span:
    """A padded sub-range ``[start, stop)`` of a sequence of which ``[keep_start, keep_stop)`` is kept.

    The context frames on each side (``start..keep_start`` and ``keep_stop..stop``)
    only inform the kept ones. Kept ranges of consecutive spans tile the sequence.
    """

    start: int
    stop: int
    keep_start: int
    keep_stop: int

    @property
    def local_keep(self) -> slice:
        """The kept part, as a slice into the padded sub-range."""
        return slice(self.keep_start - self.start, self.keep_stop - self.start)


def padded_spans(length: int, span_length: int, context: int) -> list[Span]:
    """Cut ``range(length)`` into spans of ``span_length`` kept items plus ``context`` on each side.

    A sequence no longer than ``span_length`` is one span covering everything,
    exactly as the reference processes short clips in one piece.
    """
    if length <= 0:
        return []
    if span_length < 1 or context < 0:
        raise ValueError(f"bad span settings: span_length={span_length}, context={context}")
    spans = []
    for keep_start in range(0, length, span_length):
        keep_stop = min(length, keep_start + span_length)
        spans.append(Span(max(0, keep_start - context), min(length, keep_stop + context), keep_start, keep_stop))
    return spans


def flow_completion_spans(num_flows: int, subvideo_length: int) -> list[Span]:
    """Sub-videos of ``subvideo_length`` flows with 5 flows of context on each side."""
    return padded_spans(num_flows, subvideo_length, 5)


def propagation_spans(num_frames: int, subvideo_length: int) -> list[Span]:
    """Sub-videos of ``min(100, subvideo_length)`` frames with 10 frames of context on each side."""
    return padded_spans(num_frames, min(100, subvideo_length), 10)


@dataclass(frozen=True)
class Window:
    """One transformer window: local (neighbour) frames, then non-local reference frames."""

    local: tuple[int, ...]
    refs: tuple[int, ...]

    @property
    def frames(self) -> tuple[int, ...]:
        return self.local + self.refs


def reference_frames(center: int, local: tuple[int, ...], length: int, ref_stride: int,
                     ref_count: int | None) -> tuple[int, ...]:
    """Reference frames of a window (the reference's ``get_ref_index``).

    ``ref_count=None``: every ``ref_stride``-th frame of the clip not already local.
    Otherwise frames every ``ref_stride`` in ``[center - stride*(count//2), center + stride*(count//2))``
    clipped to the clip, not local, at most ``ref_count + 1`` of them (the reference's
    off-by-one is kept for parity).
    """
    taken = set(local)
    if ref_count is None:
        return tuple(i for i in range(0, length, ref_stride) if i not in taken)
    half = ref_stride * (ref_count // 2)
    chosen: list[int] = []
    for i in range(max(0, center - half), min(length, center + half), ref_stride):
        if i in taken:
            continue
        if len(chosen) > ref_count:
            break
        chosen.append(i)
    return tuple(chosen)


def transformer_windows(length: int, neighbor_length: int, ref_stride: int, subvideo_length: int) -> list[Window]:
    """The sliding windows of the feature propagation + transformer stage.

    Windows start every ``neighbor_length // 2`` frames; each holds the frames within
    that stride on both sides, plus reference frames (over the whole clip when it is
    no longer than ``subvideo_length``, else ``subvideo_length // ref_stride`` around it).
    """
    stride = max(1, neighbor_length // 2)
    ref_count = subvideo_length // ref_stride if length > subvideo_length else None
    windows = []
    for center in range(0, length, stride):
        local = tuple(range(max(0, center - stride), min(length, center + stride + 1)))
        windows.append(Window(local, reference_frames(center, local, length, ref_stride, ref_count)))
    return windows


def window_runs(windows: list, masked: list[bool], most: int) -> list[list[list[int]]]:
    """Transformer windows in runs of batches: each run a list of batches of window indices.

    A run is up to ``2 * most`` consecutive windows (one when ``most`` is 1), all with something
    to fill (``masked[k]``), split into batches of up to ``most`` windows of one shape (numbers
    of local and reference frames; up to 80 frames the shapes alternate from one window to the
    next). A window with nothing to fill is a run of its own (it is only copied through). Every
    window appears once; the runs are in window order, so a run's windows can be composited in
    order once its batches are done.
    """
    runs: list[list[int]] = []
    for k in range(len(windows)):
        if runs and masked[k] and masked[runs[-1][0]] and len(runs[-1]) < (2 * most if most > 1 else 1):
            runs[-1].append(k)
        else:
            runs.append([k])
    out = []
    for run in runs:
        by_shape: dict[tuple[int, int], list[int]] = {}
        for k in run:
            by_shape.setdefault((len(windows[k].local), len(windows[k].frames)), []).append(k)
        out.append([same[i:i + most] for same in by_shape.values() for i in range(0, len(same), most)])
    return out
