"""Property tests (hypothesis) for the frame and mask readers and the compositing rules.

Natural sort order, mask grey values and thresholds at every bit depth, dilation
against scipy, the mask-count rule, processing sizes, and the compositing guarantee
(bit-exact outside the composited region) on random inputs.
"""

from __future__ import annotations

import string

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage

from propainter_wire.config import InpaintConfig
from propainter_wire.errors import InputError
from propainter_wire.io import binarize, dilate, list_images, mask_to_grey, natural_key, open_masks
from propainter_wire.pipeline.compositing import composite_frame, composite_region, processing_size, resize_mask

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
FILES = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

stems = st.text(alphabet=string.ascii_letters + string.digits + "_-", min_size=1, max_size=8)


def small_masks(max_side: int = 24):
    shapes = st.tuples(st.integers(1, max_side), st.integers(1, max_side))
    return shapes.flatmap(lambda s: arrays(np.bool_, s, elements=st.booleans()))


# ---------------------------------------------------------------------------
# natural order
# ---------------------------------------------------------------------------
@FAST
@given(st.lists(stems, min_size=1, max_size=12, unique=True), st.randoms(use_true_random=False))
def test_natural_order_is_total_and_independent_of_listing_order(names, rng):
    expected = sorted(names, key=natural_key)
    shuffled = list(names)
    rng.shuffle(shuffled)
    assert sorted(shuffled, key=natural_key) == expected
    keys = [natural_key(n) for n in names]
    assert len(set(keys)) == len(keys)  # no two names tie


@FAST
@given(st.lists(st.integers(0, 10**6), min_size=1, max_size=15, unique=True), stems.filter(str.isalpha),
       st.sampled_from(["", ".v2", "_final"]))
def test_numbered_names_sort_by_number(numbers, prefix, suffix):
    names = [f"{prefix}{n}{suffix}" for n in numbers]
    assert sorted(names, key=natural_key) == [f"{prefix}{n}{suffix}" for n in sorted(numbers)]


@FAST
@given(st.lists(st.integers(0, 99999), min_size=1, max_size=15, unique=True))
def test_zero_padded_names_sort_like_plain_text(numbers):
    names = [f"frame_{n:05d}.png" for n in numbers]
    assert sorted(names, key=natural_key) == sorted(names)


@FILES
@given(numbers=st.lists(st.integers(0, 5000), min_size=1, max_size=8, unique=True),
       junk=st.lists(st.sampled_from([".DS_Store", "notes.txt", ".hidden.png", "clip.mp4", "Thumbs.db"]),
                     unique=True))
def test_list_images_keeps_images_in_natural_order(tmp_path_factory, numbers, junk):
    folder = tmp_path_factory.mktemp("listing")
    pixel = cv2.imencode(".png", np.zeros((2, 2), np.uint8))[1].tobytes()
    for n in numbers:
        (folder / f"f{n}.png").write_bytes(pixel)
    for name in junk:
        (folder / name).write_bytes(b"x")
    (folder / "sub.png").mkdir()  # a folder with an image name is not an image
    got = [p.name for p in list_images(folder)]
    assert got == [f"f{n}.png" for n in sorted(numbers)]


# ---------------------------------------------------------------------------
# grey values and thresholds
# ---------------------------------------------------------------------------
grey8 = st.tuples(st.integers(1, 12), st.integers(1, 12)).flatmap(
    lambda s: arrays(np.uint8, s, elements=st.integers(0, 255)))


@FAST
@given(grey8, st.integers(0, 254))
def test_threshold_is_the_same_at_every_bit_depth(grey, threshold):
    expected = grey > threshold
    np.testing.assert_array_equal(binarize(grey, threshold), expected)
    np.testing.assert_array_equal(binarize(grey.astype(np.uint16) * 257, threshold), expected)
    np.testing.assert_array_equal(binarize(grey.astype(np.float32) / np.float32(255), threshold), expected)


@FAST
@given(grey8, st.integers(0, 253), st.integers(1, 100))
def test_raising_the_threshold_never_adds_pixels(grey, low, step):
    high = min(254, low + step)
    assert not (binarize(grey, high) & ~binarize(grey, low)).any()


@FAST
@given(st.tuples(st.integers(1, 10), st.integers(1, 10)).flatmap(
    lambda s: arrays(np.uint8, (*s, 3), elements=st.integers(0, 255))))
def test_rgb_grey_matches_pil(rgb):
    image = pytest.importorskip("PIL.Image")
    expected = np.asarray(image.fromarray(rgb, "RGB").convert("L"))
    np.testing.assert_array_equal(mask_to_grey(rgb), expected)


@FAST
@given(small_masks(16), st.sampled_from([0, 255]), st.integers(0, 255))
def test_a_stroke_on_a_flat_layer_is_its_alpha(mask, colour, transparent_level):
    assume(mask.any() and not mask.all())
    alpha = np.where(mask, 255, min(transparent_level, 254)).astype(np.uint8)
    rgba = np.dstack([np.full(mask.shape + (3,), colour, np.uint8), alpha])
    np.testing.assert_array_equal(mask_to_grey(rgba), alpha)
    np.testing.assert_array_equal(binarize(mask_to_grey(rgba), 254), mask)


# ---------------------------------------------------------------------------
# dilation
# ---------------------------------------------------------------------------
@FAST
@given(small_masks(), st.integers(0, 6))
def test_dilation_equals_scipy(mask, iterations):
    expected = ndimage.binary_dilation(mask, iterations=iterations) if iterations else mask
    np.testing.assert_array_equal(dilate(mask, iterations), expected)


@FAST
@given(small_masks(), st.integers(0, 5), st.integers(0, 5))
def test_dilation_grows_monotonically_and_composes(mask, a, b):
    once = dilate(mask, a)
    assert not (mask & ~once).any()
    assert not (once & ~dilate(mask, a + 1)).any()
    np.testing.assert_array_equal(dilate(dilate(mask, a), b), dilate(mask, a + b))


def test_negative_dilation_is_refused():
    with pytest.raises(ValueError):
        dilate(np.ones((3, 3), bool), -1)


# ---------------------------------------------------------------------------
# mask count
# ---------------------------------------------------------------------------
@FILES
@given(frames=st.integers(1, 6), count=st.integers(1, 7), seed=st.integers(0, 2**16))
def test_mask_count_rule(tmp_path_factory, frames, count, seed):
    folder = tmp_path_factory.mktemp("masks")
    rng = np.random.default_rng(seed)
    drawn = rng.integers(0, 2, (count, 6, 8)).astype(np.uint8) * 255
    for i, m in enumerate(drawn):
        cv2.imwrite(str(folder / f"m{i}.png"), m)
    if count not in (1, frames):
        with pytest.raises(InputError, match=f"{count} masks for {frames} frames"):
            open_masks(folder, frames, 6, 8)
        return
    source = open_masks(folder, frames, 6, 8)
    assert len(source) == frames and source.static == (count == 1)
    for t in range(frames):
        np.testing.assert_array_equal(source[t], drawn[0 if count == 1 else t] > 0)


# ---------------------------------------------------------------------------
# processing size and compositing
# ---------------------------------------------------------------------------
@FAST
@given(st.integers(1, 4000), st.integers(1, 4000), st.integers(8, 2000))
def test_max_side_processing_size(h, w, max_side):
    ph, pw = processing_size(h, w, InpaintConfig(max_side=max_side))
    assert ph <= h and pw <= w
    if max(h, w) <= max_side:
        assert (ph, pw) == (h, w)
    else:
        assert max(ph, pw) == max_side  # the longer side lands on N exactly
        assert ph >= min(8, h) and pw >= min(8, w)  # never below 8 px unless the input is


@st.composite
def composite_cases(draw):
    h, w = draw(st.integers(2, 20)), draw(st.integers(2, 20))
    dtype = draw(st.sampled_from([np.uint8, np.uint16, np.float32]))
    scale = draw(st.sampled_from([1.0, 0.5, 0.75]))
    ph, pw = max(1, round(h * scale)), max(1, round(w * scale))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    if dtype == np.float32:
        original = rng.normal(0.5, 0.6, (h, w, 3)).astype(np.float32)  # scene-linear, beyond [0, 1]
    else:
        original = rng.integers(0, np.iinfo(dtype).max + 1, (h, w, 3)).astype(dtype)
    raw = rng.random((h, w)) < draw(st.floats(0.0, 0.5))
    filled = rng.random((ph, pw, 3)).astype(np.float32)
    dilation = draw(st.integers(0, 3))
    return original, raw, filled, dilation


@FAST
@given(composite_cases())
def test_compositing_is_bit_exact_outside_the_region(case):
    original, raw, filled, dilation = case
    h, w = raw.shape
    ph, pw = filled.shape[:2]
    proc = dilate(resize_mask(raw, ph, pw), dilation)
    config = InpaintConfig(mask_dilation=dilation)
    out = composite_frame(original, filled, raw, proc, config)
    region = composite_region(raw, proc)
    assert out.dtype == original.dtype and out.shape == original.shape
    assert not (raw & ~region).any()  # the user's mask is always composited
    np.testing.assert_array_equal(out[~region], original[~region])
    if (ph, pw) == (h, w) and original.dtype != np.float32:
        levels = np.iinfo(original.dtype).max
        expected = np.rint(filled * levels).astype(original.dtype)
        np.testing.assert_array_equal(out[region], expected[region])


@FAST
@given(small_masks(32), st.sampled_from([0.25, 0.5, 0.8]))
def test_resize_mask_never_loses_a_masked_area(mask, scale):
    h, w = mask.shape
    ph, pw = max(1, round(h * scale)), max(1, round(w * scale))
    small = resize_mask(mask, ph, pw)
    assert small.any() == mask.any()

