"""Property tests of the index schedulers (every frame covered, indices in range, windows as specified)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from propainter_wire.pipeline.windows import (
    flow_completion_spans,
    padded_spans,
    propagation_spans,
    reference_frames,
    transformer_windows,
    window_runs,
)


def _reference_ref_index(mid, neighbor_ids, length, ref_stride, ref_num):
    """The reference's get_ref_index, restated independently as a test oracle."""
    out = []
    if ref_num == -1:
        return [i for i in range(0, length, ref_stride) if i not in neighbor_ids]
    lo = max(0, mid - ref_stride * (ref_num // 2))
    hi = min(length, mid + ref_stride * (ref_num // 2))
    for i in range(lo, hi, ref_stride):
        if i in neighbor_ids:
            continue
        if len(out) > ref_num:
            break
        out.append(i)
    return out


@settings(max_examples=300, deadline=None)
@given(length=st.integers(0, 500), span=st.integers(1, 200), context=st.integers(0, 20))
def test_padded_spans_tile_the_sequence(length, span, context):
    spans = padded_spans(length, span, context)
    kept = [i for s in spans for i in range(s.keep_start, s.keep_stop)]
    assert kept == list(range(length))
    for s in spans:
        assert 0 <= s.start <= s.keep_start < s.keep_stop <= s.stop <= length
        assert s.keep_stop - s.keep_start <= span
        assert s.keep_start - s.start == min(context, s.keep_start)
        assert s.stop - s.keep_stop == min(context, length - s.keep_stop)
        local = list(range(s.start, s.stop))[s.local_keep]
        assert local == list(range(s.keep_start, s.keep_stop))
    if 0 < length <= span:
        assert len(spans) == 1 and (spans[0].start, spans[0].stop) == (0, length)


@settings(max_examples=200, deadline=None)
@given(length=st.integers(1, 500), sub=st.integers(1, 200))
def test_stage_spans_use_reference_context(length, sub):
    for s in flow_completion_spans(length, sub):
        assert s.keep_start - s.start <= 5
    prop = propagation_spans(length, sub)
    assert all(s.keep_stop - s.keep_start <= min(100, sub) for s in prop)
    assert all(s.keep_start - s.start <= 10 for s in prop)


@settings(max_examples=300, deadline=None)
@given(length=st.integers(1, 500), neighbor=st.integers(2, 30), ref_stride=st.integers(1, 30),
       sub=st.integers(1, 200))
def test_transformer_windows_cover_and_match_reference(length, neighbor, ref_stride, sub):
    windows = transformer_windows(length, neighbor, ref_stride, sub)
    stride = neighbor // 2
    assert [w.local[0] for w in windows] == [max(0, c - stride) for c in range(0, length, stride)]
    covered = set()
    ref_num = sub // ref_stride if length > sub else -1
    for center, w in zip(range(0, length, stride), windows, strict=True):
        assert list(w.local) == list(range(max(0, center - stride), min(length, center + stride + 1)))
        assert all(0 <= i < length for i in w.frames)
        assert not set(w.refs) & set(w.local)
        assert list(w.refs) == _reference_ref_index(center, list(w.local), length, ref_stride, ref_num)
        covered.update(w.local)
    assert covered == set(range(length))


def test_reference_frames_whole_clip_when_short():
    assert reference_frames(0, (0, 1, 2, 3, 4, 5), 12, 10, None) == (10,)
    assert transformer_windows(12, 10, 10, 80)[0].frames == (0, 1, 2, 3, 4, 5, 10)


@pytest.mark.parametrize("length", [12, 37, 80, 200])
@pytest.mark.parametrize("most", [1, 2, 4])
def test_window_runs_cover_every_window_once_in_order(length, most):
    windows = transformer_windows(length, 10, 10, 80)
    masked = [k % 7 != 3 for k in range(len(windows))]  # some windows with nothing to fill
    runs = window_runs(windows, masked, most)
    flat = [k for run in runs for batch in run for k in batch]
    assert sorted(flat) == list(range(len(windows)))
    assert [min(k for batch in run for k in batch) for run in runs] == sorted(
        min(k for batch in run for k in batch) for run in runs)
    for run in runs:
        members = sorted(k for batch in run for k in batch)
        assert members == list(range(members[0], members[-1] + 1))  # consecutive windows
        assert len(members) <= (2 * most if most > 1 else 1)
        if len(members) > 1:
            assert all(masked[k] for k in members)
        for batch in run:
            assert 1 <= len(batch) <= most
            assert len({(len(windows[k].local), len(windows[k].frames)) for k in batch}) == 1


def test_window_runs_batch_alternating_shapes():
    """Up to 80 frames the windows alternate between two shapes: a run of 8 batches them 4 and 4 (or
    3 and 3 beside an edge window of its own shape): 6 batches for 16 windows, the fewest possible."""
    windows = transformer_windows(80, 10, 10, 80)
    runs = window_runs(windows, [True] * len(windows), 4)
    assert runs == [[[0], [1, 3, 5, 7], [2, 4, 6]], [[8, 10, 12, 14], [9, 11, 13], [15]]]
