"""The input's alpha in a ProRes 4444 master, through the real ``inpaint`` run (classic engine).

Tolerance: the master stores alpha at 10 bits (prores_ks takes ``yuva444p10le``; the encoder
frame rounds it to the nearest level: half a step, 32/65535), and FFmpeg's decoder hands it back
as 12-bit levels (read here as level / 4095), which adds that decoder's own rounding. An 8- or
16-bit input alpha came back within 43/65535 (0.68 of a 10-bit step). It is compared in unit
range with a bound of one 10-bit step, 1/1023 (64/65535), far below any real change of the
matte (a fill that touched alpha, an opaque master, a frame off by one: >= 0.1 here). A ProRes
4444 source's alpha already went through the same 10-bit store: it must come back exactly.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from delivery_sources import need_encoder, ramp
from propainter_wire.cli import main
from propainter_wire.io.alpha import SequenceAlpha, VideoAlpha, alpha16, frame_alpha16, open_alpha
from propainter_wire.io.frames import open_frames

av = pytest.importorskip("av")
cv2 = pytest.importorskip("cv2")
W, H, T = 96, 64, 5
TEN_BIT_STEP = 1 / 1023


def _alpha(i: int, peak: float) -> np.ndarray:
    """(H, W) float alpha in [0, 1] that varies across the frame and from frame to frame."""
    x = np.linspace(0.0, 1.0, W)[None, :]
    y = np.linspace(0.0, 1.0, H)[:, None]
    a = (0.6 * x + 0.4 * y + 0.13 * i) % 1.0
    a[: H // 4, : W // 4] = 0.0  # a fully transparent corner and a fully opaque one
    a[-H // 4:, -W // 4:] = 1.0
    return np.rint(a * peak) / peak


def _mask(path):
    mask = np.zeros((H, W), np.uint8)
    cv2.line(mask, (4, 10), (W - 8, H - 12), 255, 5)
    cv2.imwrite(str(path), mask)
    return path


def _run(video, mask, out, *flags) -> str:
    """Run ``inpaint`` to a prores4444 master; return the report's ``delivery.alpha``."""
    code = main(["inpaint", "-i", str(video), "-m", str(mask), "-o", str(out), "--engine", "classic", "--quiet",
                 "--video-codec", "prores4444", *flags])
    assert code == 0
    return json.loads((out / "report.json").read_text())["delivery"]["alpha"]


def _levels(frame) -> tuple[np.ndarray, int]:
    """A decoded planar frame's alpha plane as stored (its levels) and its top level."""
    alpha = next(c for c in frame.format.components if c.is_alpha)
    plane = frame.planes[alpha.plane]
    levels = np.frombuffer(plane, "<u2" if alpha.bits > 8 else np.uint8).reshape(plane.height, -1)
    return levels[:, : frame.width], (1 << alpha.bits) - 1


def _decoded_alpha(path) -> np.ndarray:
    """Every frame's alpha as the decoder gives it (ProRes: 12-bit levels), in unit range: (T, H, W)."""
    with av.open(str(path)) as c:
        return np.stack([levels / peak for levels, peak in map(_levels, c.decode(video=0))])


def _rgba_png_sequence(folder, dtype) -> list[np.ndarray]:
    folder.mkdir()
    peak = float(np.iinfo(dtype).max)
    alphas = []
    for i in range(T):
        rgb = ramp(i, W, H).astype(np.float64) / 255.0
        alpha = _alpha(i, peak)
        bgra = np.concatenate([rgb[:, :, ::-1], alpha[:, :, None]], axis=2)
        cv2.imwrite(str(folder / f"plate.{1001 + i}.png"), np.rint(bgra * peak).astype(dtype))
        alphas.append(alpha)
    return alphas


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_rgba_png_sequence_alpha_reaches_the_master(tmp_path, dtype):
    need_encoder("prores_ks")
    alphas = _rgba_png_sequence(tmp_path / "plate", dtype)
    assert _run(tmp_path / "plate", _mask(tmp_path / "m.png"), tmp_path / "out", "--fps", "24") == "input"
    got = _decoded_alpha(tmp_path / "out" / "inpainted.mov")
    assert got.shape == (T, H, W)
    assert np.abs(got - np.stack(alphas)).max() <= TEN_BIT_STEP
    # the frame files keep the alpha too (the plate's other channels come back unchanged)
    frame = cv2.imread(str(tmp_path / "out" / "frames" / "plate.1003.png"), cv2.IMREAD_UNCHANGED)
    assert frame.shape[2] == 4 and np.array_equal(frame[:, :, 3] / float(np.iinfo(dtype).max), alphas[2])


def test_exr_alpha_reaches_the_master(tmp_path):
    need_encoder("prores_ks")
    from propainter_wire.io.oiio import write_image

    folder = tmp_path / "plate"
    folder.mkdir()
    alphas = []
    for i in range(T):
        alpha = _alpha(i, 1 << 16).astype(np.float32)
        rgb = ramp(i, W, H).astype(np.float32) / 255.0
        write_image(folder / f"plate.{1001 + i:04d}.exr", np.concatenate([rgb, alpha[:, :, None]], axis=2))
        alphas.append(alpha)
    assert _run(folder / "plate.####.exr", _mask(tmp_path / "m.png"), tmp_path / "out") == "input"
    got = _decoded_alpha(tmp_path / "out" / "inpainted.mov")
    assert np.abs(got - np.stack(alphas)).max() <= TEN_BIT_STEP


def _prores4444(path, alphas) -> None:
    """A ProRes 4444 .mov (yuva444p10le) whose alpha plane is ``alphas`` (unit range)."""
    out = av.open(str(path), "w", format="mov")
    stream = out.add_stream("prores_ks", rate=24, options={"profile": "4", "alpha_bits": "16"})
    stream.width, stream.height, stream.pix_fmt = W, H, "yuva444p10le"
    for i, alpha in enumerate(alphas):
        rgba = np.concatenate([ramp(i, W, H).astype(np.uint16) * 257,
                               np.rint(alpha * 65535).astype(np.uint16)[:, :, None]], axis=2)
        picture = av.VideoFrame.from_ndarray(rgba, format="rgba64le").reformat(format="yuva444p10le")
        picture.pts = i
        out.mux(stream.encode(picture))
    out.mux(stream.encode(None))
    out.close()


def test_prores4444_input_alpha_reaches_the_master(tmp_path):
    need_encoder("prores_ks")
    source = tmp_path / "plate.mov"
    _prores4444(source, [_alpha(i, 1023) for i in range(T)])
    assert _run(source, _mask(tmp_path / "m.png"), tmp_path / "out") == "input"
    want, got = _decoded_alpha(source), _decoded_alpha(tmp_path / "out" / "inpainted.mov")
    assert got.shape == want.shape == (T, H, W)
    assert np.ptp(want[:, H // 2, W // 2]) > 0.1  # the alpha varies from frame to frame
    np.testing.assert_array_equal(got, want)


def test_rgb_inputs_give_an_opaque_master(tmp_path):
    need_encoder("prores_ks")
    folder = tmp_path / "plate"
    folder.mkdir()
    for i in range(T):
        cv2.imwrite(str(folder / f"f.{i}.png"), ramp(i, W, H))
    assert _run(folder, _mask(tmp_path / "m.png"), tmp_path / "out") == "opaque"
    assert _decoded_alpha(tmp_path / "out" / "inpainted.mov").min() == 1.0  # every sample at the top level
    assert open_alpha(open_frames(folder)) is None


def test_ordinary_video_is_not_reopened_for_alpha(tmp_path):
    from delivery_sources import make_source

    need_encoder("libx264")
    video = make_source(tmp_path / "rgb.mp4", frames=3, size=(W, H), audio=None)
    assert open_alpha(open_frames(video)) is None


def test_video_alpha_reader_in_and_out_of_order(tmp_path):
    need_encoder("prores_ks")
    source = tmp_path / "plate.mov"
    _prores4444(source, [_alpha(i, 1023) for i in range(T)])
    want = _decoded_alpha(source)
    reader = open_alpha(open_frames(source))
    assert isinstance(reader, VideoAlpha)
    try:
        for i in (0, 1, 3, 1, 4):  # forward, skipping, then back (decodes again from the start)
            got = reader(i)
            assert got.dtype == np.uint16 and np.array_equal(got, np.rint(want[i] * 65535))
    finally:
        reader.close()


def test_sequence_alpha_and_sample_types(tmp_path):
    alphas = _rgba_png_sequence(tmp_path / "plate", np.uint8)
    reader = open_alpha(open_frames(tmp_path / "plate"))
    assert isinstance(reader, SequenceAlpha)
    assert np.array_equal(reader(4), np.rint(alphas[4] * 255).astype(np.uint16) * 257)
    assert alpha16(np.array([0, 255], np.uint8)).tolist() == [0, 65535]
    assert alpha16(np.array([-1.0, 0.5, 2.0, np.nan], np.float32)).tolist() == [0, 32768, 65535, 0]


@pytest.mark.parametrize("fmt", ["yuva420p", "yuva444p10le", "yuva444p12le", "gbrap16le", "argb", "rgba64le"])
def test_frame_alpha_keeps_the_top_level(fmt):
    """Opaque stays opaque and transparent stays transparent whatever the format's depth
    (swscale's rgba64le shifts an 8-bit 255 to 65280: not used for planar formats)."""
    rgba = np.zeros((4, 6, 4), np.uint16)
    rgba[:, :3, 3] = 65535
    rgba[:, 3:, 3] = 32768
    frame = av.VideoFrame.from_ndarray(rgba, format="rgba64le").reformat(format=fmt)
    got = frame_alpha16(frame)
    assert got.shape == (4, 6) and got.dtype == np.uint16
    assert (got[:, :3] == 65535).all() and (np.abs(got[:, 3:].astype(int) - 32768) <= 65535 / 255 / 2 + 1).all()
