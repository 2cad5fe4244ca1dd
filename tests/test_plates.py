"""Plates in, plates out: numbered sequences, formats and headers kept, mattes as roto delivers them."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

oiio = pytest.importorskip("OpenImageIO")

from propainter_wire.cli import main  # noqa: E402
from propainter_wire.errors import InputError  # noqa: E402
from propainter_wire.io import open_frames, open_masks  # noqa: E402
from propainter_wire.io.sequence import find_sequence, parse_frame_range  # noqa: E402

FAST = ["--engine", "classic", "--device", "cpu", "--quiet"]
H, W = 32, 48


def texture(n: int, h: int = H, w: int = W, seed: int = 0) -> np.ndarray:
    """(n, h, w, 3) float32 in [0, 1]: a smooth texture panning right 2 px per frame."""
    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.random((h, w + 2 * n, 3), dtype=np.float32), (7, 7), 0)
    return np.stack([base[:, 2 * t:2 * t + w] for t in range(n)])


def write(path: Path, pixels: np.ndarray, names: tuple[str, ...], fmt: str, **attrs) -> None:
    """One file through OpenImageIO with the given channels, sample type and attributes."""
    h, w, c = pixels.shape
    spec = oiio.ImageSpec(w, h, c, fmt)
    spec.channelnames = names
    for key, value in attrs.items():
        if key == "window":
            spec.x, spec.y, spec.full_width, spec.full_height = value
        elif key == "tiles":
            spec.tile_width, spec.tile_height = value, value
        else:
            spec.attribute(key.replace("__", ":"), value)
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), spec) and out.write_image(pixels) and out.close(), oiio.geterror()


def read(path: Path):
    inp = oiio.ImageInput.open(str(path))
    spec = inp.spec()
    pixels = inp.read_image(0, 0, 0, spec.nchannels, "unknown")
    inp.close()
    return pixels, spec


def run(capsys, *args) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["inpaint", *map(str, args)])
    return code, capsys.readouterr().err


def box(t: int, h: int = H, w: int = W) -> np.ndarray:
    mask = np.zeros((h, w), np.float32)
    mask[10:18, 14 + t:22 + t] = 1.0
    return mask


def exr_shot(root: Path, first: int = 1001, count: int = 6, matte_first: int | None = None,
             compression: str = "piz", tiles: int = 0) -> tuple[Path, Path]:
    """A half-float plate with alpha and depth, header attributes and overscan, and alpha-only mattes."""
    plates, mattes = root / "plate", root / "roto"
    plates.mkdir(parents=True, exist_ok=True)
    mattes.mkdir(parents=True, exist_ok=True)
    rgb = texture(count) * 4.0  # scene-linear: values up to ~3
    rgb[:, 12:14, :, :] = 8.14  # a highlight crossing the frame (and the fill)
    for t in range(count):
        alpha = np.full((H, W, 1), 0.75, np.float32)
        depth = np.full((H, W, 1), 100.0 + t, np.float32)
        pixels = np.concatenate([rgb[t], alpha, depth], axis=-1).astype(np.float16)
        extra = {"tiles": tiles} if tiles else {}
        write(plates / f"plate.{first + t:04d}.exr", pixels, ("R", "G", "B", "A", "Z"), "half", **extra,
              compression=compression, comment="shot 010", FramesPerSecond=24.0, window=(-6, -4, W - 12, H - 8),
              **{"studio__reel": "A001"})
    for t in range(count):
        number = (matte_first if matte_first is not None else first) + t
        write(mattes / f"roto.{number:04d}.exr", box(t)[:, :, None], ("A",), "half", window=(-6, -4, W - 12, H - 8))
    return plates / "plate.####.exr", mattes / "roto.####.exr"


# ---------------------------------------------------------------------------
# sequences by number
# ---------------------------------------------------------------------------
def test_patterns_and_ranges(tmp_path):
    for n in range(1001, 1006):
        (tmp_path / f"plate.{n:04d}.exr").write_bytes(b"")
    by_hash = find_sequence(tmp_path / "plate.####.exr", (".exr",), str)
    assert by_hash.numbers == (1001, 1002, 1003, 1004, 1005)
    assert find_sequence(tmp_path / "plate.%04d.exr", (".exr",), str).files == by_hash.files
    assert find_sequence(tmp_path / "plate.@@@@.exr", (".exr",), str).files == by_hash.files
    assert find_sequence(tmp_path, (".exr",), str).numbers == by_hash.numbers
    assert by_hash.select(parse_frame_range("1002-1003"), tmp_path).numbers == (1002, 1003)
    with pytest.raises(InputError, match="beyond"):
        by_hash.select(parse_frame_range("1000-1003"), tmp_path)
    with pytest.raises(InputError, match="A-B"):
        parse_frame_range("10..20")


def test_gap_and_two_versions_are_refused(tmp_path):
    for n in (1001, 1002, 1003, 1005, 1006):
        (tmp_path / f"plate.{n:04d}.exr").write_bytes(b"")
    with pytest.raises(InputError, match="1004 missing"):
        find_sequence(tmp_path, (".exr",), str)
    versions = tmp_path / "v"
    versions.mkdir()
    for v in (1, 2):
        for n in range(1001, 1004):
            (versions / f"plate_v00{v}.{n}.exr").write_bytes(b"")
    with pytest.raises(InputError, match=r"2 sequences in one folder: plate_v001\.####\.exr"):
        find_sequence(versions, (".exr",), str)


@pytest.mark.parametrize("compression,tiles", [("piz", 0), ("zip", 16)])
def test_exr_shot_round_trip_keeps_everything_outside_the_fill(tmp_path, capsys, compression, tiles):
    plate, roto = exr_shot(tmp_path / "shot", matte_first=1001, count=8, compression=compression, tiles=tiles)
    out = tmp_path / "out"
    code, err = run(capsys, "-i", plate, "-m", roto, "--mask-channel", "A", "--frames", "1002-1007", "-o", out,
                    *FAST)
    assert code == 0, err
    names = sorted(p.name for p in (out / "frames").iterdir())
    assert names == [f"plate.{n}.exr" for n in range(1002, 1008)]
    for n in range(1002, 1008):
        src, src_spec = read(tmp_path / "shot" / "plate" / f"plate.{n}.exr")
        got, spec = read(out / "frames" / f"plate.{n}.exr")
        assert got.dtype == np.float16 and spec.channelnames == ("R", "G", "B", "A", "Z")
        assert spec.getattribute("compression") == compression and spec.getattribute("comment") == "shot 010"
        assert spec.tile_width == tiles
        assert spec.getattribute("studio:reel") == "A001" and spec.getattribute("FramesPerSecond") == 24.0
        assert (spec.x, spec.y, spec.width, spec.height, spec.full_width, spec.full_height) == (
            src_spec.x, src_spec.y, src_spec.width, src_spec.height, src_spec.full_width, src_spec.full_height)
        np.testing.assert_array_equal(got[..., 3:], src[..., 3:])  # alpha and depth untouched
        changed = (got[..., :3] != src[..., :3]).any(axis=-1)
        near = cv2.dilate(box(n - 1001).astype(np.uint8), np.ones((11, 11), np.uint8)) > 0
        assert not (changed & ~near).any()  # every pixel outside the fill keeps its bits
        assert changed.any()
    report = json.loads((out / "report.json").read_text())
    assert report["frame_numbers"] == list(range(1002, 1008))
    assert "--frames" in report["command_line"]
    assert set(report["mask_coverage"]) == {f"plate.{n}" for n in range(1002, 1008)}


def test_lossy_dwaa_plate_stays_dwaa_half(tmp_path, capsys):
    """DWAA is lossy: a re-encoded frame is close, not bit-identical, as from any compositing package."""
    plate, roto = exr_shot(tmp_path / "shot", compression="dwaa")
    out = tmp_path / "out"
    assert run(capsys, "-i", plate, "-m", roto, "-o", out, *FAST)[0] == 0
    got, spec = read(out / "frames" / "plate.1001.exr")
    assert spec.getattribute("compression") == "dwaa" and got.dtype == np.float16
    assert (out / "frames" / "plate.1001.exr").stat().st_size < 2 * (plate.parent / "plate.1001.exr").stat().st_size


def test_highlight_crossing_the_fill_is_not_clipped(tmp_path, capsys):
    plate, roto = exr_shot(tmp_path / "shot")
    out = tmp_path / "out"
    assert run(capsys, "-i", plate, "-m", roto, "-o", out, *FAST)[0] == 0  # alpha-only matte: no flag needed
    got, _ = read(out / "frames" / "plate.1003.exr")
    inside = box(2) > 0
    row = got[12:14, :, 0].astype(np.float32)
    assert row[inside[12:14]].max() >= 0.9 * 8.14  # the highlight runs on through the fill
    assert got[..., :3].astype(np.float32).max() > 8.0


def test_matte_numbers_pair_with_plate_numbers(tmp_path, capsys):
    plate, roto = exr_shot(tmp_path / "shot", first=1001, matte_first=1003)
    code, err = run(capsys, "-i", plate, "-m", roto, "-o", tmp_path / "out", *FAST)
    assert code == 2 and "no matte for frame(s) 1001-1002" in err
    assert len(err.strip().splitlines()) == 1
    code, err = run(capsys, "-i", plate, "-m", roto, "--frames", "1003-1006", "-o", tmp_path / "out", *FAST)
    assert code == 0, err


def test_missing_frame_stops_the_run(tmp_path, capsys):
    plate, roto = exr_shot(tmp_path / "shot")
    (tmp_path / "shot" / "plate" / "plate.1004.exr").unlink()
    code, err = run(capsys, "-i", plate, "-m", roto, "-o", tmp_path / "out", *FAST)
    assert code == 2 and "1004 missing" in err


def test_video_output_numbers_from_start_number(tmp_path, capsys):
    from propainter_wire.io import VideoWriter

    frames = (texture(4) * 255).astype(np.uint8)
    with VideoWriter(tmp_path / "in.mp4", fps=24, width=W, height=H) as video:
        for f in frames:
            video.write(f)
    cv2.imwrite(str(tmp_path / "m.png"), (box(0) * 255).astype(np.uint8))
    code, err = run(capsys, "-i", tmp_path / "in.mp4", "-m", tmp_path / "m.png", "--start-number", "1001",
                    "-o", tmp_path / "out", *FAST)
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "out" / "frames").iterdir())[0] == "01001.png"


# ---------------------------------------------------------------------------
# DPX and TIFF
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("ext,fmt,bits", [(".dpx", "uint16", 10), (".tif", "uint16", 16), (".tif", "float", 32)])
def test_dpx_and_tiff_keep_format_and_depth(tmp_path, capsys, ext, fmt, bits):
    plates = tmp_path / "plates"
    plates.mkdir()
    clip = texture(4)
    for t in range(4):
        if fmt == "uint16":
            levels = np.rint(clip[t] * (2**bits - 1)) * (65535 // (2**bits - 1))
            pixels = levels.astype(np.uint16)
        else:
            pixels = clip[t] * 2.0
        attrs = {"oiio__BitsPerSample": bits} if ext == ".dpx" else {"compression": "zip"}
        write(plates / f"plate.{1001 + t}{ext}", pixels, ("R", "G", "B"), fmt, **attrs)
    mattes = tmp_path / "mattes"
    mattes.mkdir()
    for t in range(4):
        cv2.imwrite(str(mattes / f"m.{1001 + t}.png"), (box(t) * 255).astype(np.uint8))
    out = tmp_path / "out"
    code, err = run(capsys, "-i", plates, "-m", mattes, "-o", out, *FAST)
    assert code == 0, err
    for t in range(4):
        src, src_spec = read(plates / f"plate.{1001 + t}{ext}")
        got, spec = read(out / "frames" / f"plate.{1001 + t}{ext}")
        assert got.dtype == src.dtype and spec.format == src_spec.format
        assert spec.get_int_attribute("oiio:BitsPerSample") == src_spec.get_int_attribute("oiio:BitsPerSample")
        near = cv2.dilate(box(t).astype(np.uint8), np.ones((11, 11), np.uint8)) > 0
        np.testing.assert_array_equal(got[~near], src[~near])
        assert (got[near] != src[near]).any()


# ---------------------------------------------------------------------------
# mattes
# ---------------------------------------------------------------------------
def _feathered() -> np.ndarray:
    mask = np.zeros((H, W), np.float32)
    mask[10:20, 12:30] = 1.0
    return cv2.GaussianBlur(mask, (9, 9), 3)


@pytest.mark.parametrize("threshold", [0.0, 0.5])
def test_soft_matte_threshold_is_the_same_at_every_bit_depth(tmp_path, threshold):
    soft = _feathered()
    write(tmp_path / "m8.png", np.rint(soft * 255).astype(np.uint8)[..., None], ("Y",), "uint8")
    write(tmp_path / "m16.png", np.rint(soft * 65535).astype(np.uint16)[..., None], ("Y",), "uint16")
    write(tmp_path / "mf.exr", soft[..., None], ("Y",), "float")
    counts = [int(np.count_nonzero(open_masks(tmp_path / n, 1, H, W, threshold=threshold, soft=True)[0]))
              for n in ("m8.png", "m16.png", "mf.exr")]
    if threshold > 0:
        assert max(counts) - min(counts) <= 2, counts
    weights = open_masks(tmp_path / "m16.png", 1, H, W, threshold=threshold, soft=True)[0]
    assert weights.dtype == np.float32 and 0 < weights[weights > 0].min() < 1  # a soft matte's own values
    hard = open_masks(tmp_path / "m16.png", 1, H, W, threshold=threshold, soft=False)[0]
    assert hard.dtype == bool


def test_soft_matte_is_the_blend_weight(tmp_path, capsys):
    from propainter_wire import inpaint_arrays

    frames = (texture(4) * 255).astype(np.uint8)
    soft = _feathered()
    masks = np.stack([soft] * 4)
    out = inpaint_arrays(frames, masks, engine="classic", device="cpu", mask_dilation=0)
    hard = inpaint_arrays(frames, masks > 0, engine="classic", device="cpu", mask_dilation=0)
    np.testing.assert_array_equal(out[:, soft == 0], frames[:, soft == 0])
    edge = (soft > 0.2) & (soft < 0.8)
    # between the plate and the full fill where the matte is soft
    lo = np.minimum(frames, hard).astype(int) - 1
    hi = np.maximum(frames, hard).astype(int) + 1
    assert ((out[:, edge] >= lo[:, edge]) & (out[:, edge] <= hi[:, edge])).all()
    np.testing.assert_array_equal(out[:, soft >= 1], hard[:, soft >= 1])


def test_channel_choice_and_invert(tmp_path):
    mask = box(0)
    rgba = np.concatenate([np.zeros((H, W, 3), np.float32), mask[..., None], 1 - mask[..., None]], axis=-1)
    write(tmp_path / "m.exr", rgba, ("R", "G", "B", "A", "roto.mask"), "half")
    np.testing.assert_array_equal(open_masks(tmp_path / "m.exr", 1, H, W)[0], mask > 0)  # alpha by default
    np.testing.assert_array_equal(open_masks(tmp_path / "m.exr", 1, H, W, channel="mask", invert=True)[0],
                                  mask > 0)
    with pytest.raises(InputError, match="no channel 'Q'"):
        open_masks(tmp_path / "m.exr", 1, H, W, channel="Q")


def test_large_matte_and_mask_equal_to_input_warn_under_quiet(tmp_path, capsys):
    frames = tmp_path / "f"
    frames.mkdir()
    for t, f in enumerate((texture(3) * 255).astype(np.uint8)):
        cv2.imwrite(str(frames / f"{t:04d}.png"), f)
    matte = tmp_path / "m.png"
    holdout = np.zeros((H, W), np.uint8)
    holdout[:, :22] = 255  # inverted: 54 % of the frame
    cv2.imwrite(str(matte), holdout)
    code, err = run(capsys, "-i", frames, "-m", matte, "--invert-mask", "-o", tmp_path / "out", *FAST)
    assert code == 0 and "covers more than 50%" in err
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert any("covers more than 50%" in w for w in report["warnings"])
    code, err = run(capsys, "-i", frames, "-m", frames, "-o", tmp_path / "out2", *FAST)
    assert "the mask is the input itself" in err


def test_inpaint_arrays_takes_float16():
    from propainter_wire import inpaint_arrays

    frames = texture(3).astype(np.float16)
    masks = np.stack([box(t) > 0 for t in range(3)])
    out = inpaint_arrays(frames, masks, engine="classic", device="cpu")
    assert out.dtype == np.float16 and out.shape == frames.shape
    np.testing.assert_array_equal(out[:, :2], frames[:, :2])


def test_open_frames_names_output_after_input(tmp_path):
    plate, _ = exr_shot(tmp_path)
    clip = open_frames(plate, parse_frame_range("1002-1003"))
    assert clip.numbers == [1002, 1003] and clip.output_names() == ["plate.1002.exr", "plate.1003.exr"]
    assert clip.origin == (-6, -4) and clip.dtype == np.float32


def test_grey_image_round_trip_matches_opencv(tmp_path):
    from propainter_wire.io import read_image, write_image

    grey = np.zeros((H, W), np.uint8)
    grey[5:9, 20:30] = 255
    write_image(tmp_path / "k.png", grey)
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "k.png"), cv2.IMREAD_UNCHANGED), grey)
    np.testing.assert_array_equal(read_image(tmp_path / "k.png"), grey)


def test_multi_part_exr_keeps_every_part(tmp_path):
    from propainter_wire.io.oiio import read_image, write_plate

    beauty = oiio.ImageSpec(8, 6, 3, "half")
    beauty.channelnames = ("R", "G", "B")
    beauty.attribute("name", "beauty")
    depth = oiio.ImageSpec(8, 6, 1, "float")
    depth.channelnames = ("Z",)
    depth.attribute("name", "depth")
    rgb = np.random.default_rng(0).random((6, 8, 3)).astype(np.float16)
    z = np.random.default_rng(1).random((6, 8, 1)).astype(np.float32)
    out = oiio.ImageOutput.create(str(tmp_path / "mp.exr"))
    assert out.open(str(tmp_path / "mp.exr"), (beauty, depth)) and out.write_image(rgb)
    assert out.open(str(tmp_path / "mp.exr"), depth, "AppendSubimage") and out.write_image(z) and out.close()
    colour = read_image(tmp_path / "mp.exr")
    colour[0, 0] = 5.0
    write_plate(tmp_path / "mp.exr", tmp_path / "out.exr", colour)
    inp = oiio.ImageInput.open(str(tmp_path / "out.exr"))
    assert inp.spec().getattribute("name") == "beauty"
    np.testing.assert_array_equal(inp.read_image(0, 0, 0, 3, "unknown")[0, 0], [5.0, 5.0, 5.0])
    assert inp.seek_subimage(1, 0) and inp.spec().getattribute("name") == "depth"
    np.testing.assert_array_equal(np.asarray(inp.read_image(1, 0, 0, 1, "unknown")).reshape(6, 8, 1), z)
    inp.close()
