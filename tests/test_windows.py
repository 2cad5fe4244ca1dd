"""Property tests of the index schedulers (every frame covered, indices in range, windows as specified)."""

from hypothesis import given, settings
from hypothesis import strategies as st

from propainter_wire.pipeline.windows import (
    flow_completion_spans,
    padded_spans,
    propagation_spans,
    reference_frames,
    transformer_windows,
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
