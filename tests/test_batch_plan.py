"""The ``batch --split auto`` rule (batch/plan.py): idle workers only, to the shot that ends last, and
only where a cut saves MIN_SAVING of its longest part."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from propainter_wire.batch.plan import MIN_SAVING, auto_parts, parse_split, part_frames
from propainter_wire.batch.split import schedule
from propainter_wire.config import InpaintConfig
from propainter_wire.errors import InputError

CONFIGS = [InpaintConfig(), InpaintConfig(neighbor_length=2, ref_stride=1, subvideo_length=2),
           InpaintConfig(neighbor_length=4, ref_stride=3, subvideo_length=8)]
configs = st.sampled_from(CONFIGS)
batches = st.lists(st.tuples(st.integers(0, 3000), configs), min_size=1, max_size=5)


def _wall(lengths, cfgs, parts) -> int:
    return max(part_frames(t, n, c) for t, c, n in zip(lengths, cfgs, parts, strict=True))


@settings(max_examples=150, deadline=None)
@given(batch=batches, workers=st.integers(1, 8))
def test_auto_parts_uses_only_idle_workers(batch, workers):
    lengths, cfgs = [t for t, _ in batch], [c for _, c in batch]
    parts = auto_parts(lengths, cfgs, workers)
    assert len(parts) == len(lengths) and all(n >= 1 for n in parts)
    if len(lengths) >= workers:
        assert parts == [1] * len(lengths)  # no idle worker: splitting would only add context
    else:
        assert sum(parts) <= workers
    for t, c, n in zip(lengths, cfgs, parts, strict=True):
        if n > 1:
            spans = schedule(t, n, c)
            assert spans is not None and 1 < len(spans) <= n
            assert part_frames(t, n, c) <= (1 - MIN_SAVING) * t  # the cut pays
            assert t > c.subvideo_length


@settings(max_examples=100, deadline=None)
@given(batch=batches, workers=st.integers(1, 7))
def test_more_workers_never_lengthen_the_batch(batch, workers):
    lengths, cfgs = [t for t, _ in batch], [c for _, c in batch]
    fewer = _wall(lengths, cfgs, auto_parts(lengths, cfgs, workers))
    more = _wall(lengths, cfgs, auto_parts(lengths, cfgs, workers + 1))
    assert more <= fewer <= max(lengths)


@settings(max_examples=100, deadline=None)
@given(length=st.integers(0, 3000), workers=st.integers(2, 8), config=configs)
def test_a_lone_short_shot_never_splits(length, workers, config):
    """A shot whose best cut saves less than MIN_SAVING (or no longer than its sub-video) runs whole."""
    best = min(part_frames(length, n, config) for n in range(1, workers + 1))
    parts = auto_parts([length], [config], workers)
    assert (parts == [1]) == (best > (1 - MIN_SAVING) * length or length <= config.subvideo_length)


def test_the_figures_of_the_docs():
    config = InpaintConfig()  # context 240 frames each side of a cut
    assert auto_parts([600], [config], 2) == [1]
    assert auto_parts([640], [config], 2) == [2] and part_frames(640, 2, config) == 560
    assert all(auto_parts([t], [config], 2) == [2] for t in range(720, 3000, 40))
    assert auto_parts([2000], [config], 4) == [4] and part_frames(2000, 4, config) == 1040
    # 2 idle workers: 2 parts (1280 frames); 3 parts (1200) would save less than a tenth more
    assert auto_parts([2000, 100], [config, config], 4) == [2, 1]
    assert auto_parts([2000, 1900], [config, config], 2) == [1, 1]  # as many shots as workers
    assert auto_parts([2000], [config], 1) == [1]


def test_parse_split():
    assert parse_split("auto") is None and parse_split("AUTO") is None
    assert parse_split("1") == 1 and parse_split("3") == 3
    for bad in ("0", "-2", "two", "1.5"):
        try:
            parse_split(bad)
        except InputError as exc:
            assert "--split" in str(exc)
        else:
            raise AssertionError(bad)
