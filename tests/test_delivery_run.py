"""Delivery through the real ``inpaint`` run: masters, --video-only, review files, regrain, resume."""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest

from delivery_sources import audio_packets, make_source, need_encoder
from propainter_wire.cli import main

av = pytest.importorskip("av")
cv2 = pytest.importorskip("cv2")
NTSC_FILM = Fraction(24000, 1001)
W, H, T = 256, 144, 12


def _mask(path, width=W, height=H):
    mask = np.zeros((height, width), np.uint8)
    cv2.line(mask, (10, 20), (width - 16, height - 24), 255, 6)
    cv2.imwrite(str(path), mask)
    return path


@pytest.fixture(scope="module")
def plate(tmp_path_factory):
    need_encoder("libx264")
    folder = tmp_path_factory.mktemp("plate")
    return make_source(folder / "plate.mov", frames=T, size=(W, H)), _mask(folder / "mask.png")


def _run(plate, out, *flags):
    video, mask = plate
    code = main(["inpaint", "-i", str(video), "-m", str(mask), "-o", str(out), "--engine", "classic", "--quiet",
                 *flags])
    assert code == 0
    return json.loads((out / "report.json").read_text())


def _timecodes(container) -> list:
    return [s.metadata.get("timecode") for s in container.streams] + [container.metadata.get("timecode")]


@pytest.mark.parametrize("codec, decoded, pix_prefix", [
    ("prores", "prores", "yuv422p10"), ("dnxhr", "dnxhd", "yuv422p10"), ("prores4444", "prores", "yuva444p1")])
def test_master_from_cli(tmp_path, plate, codec, decoded, pix_prefix):
    need_encoder("prores_ks" if decoded == "prores" else "dnxhd")
    report = _run(plate, tmp_path / "out", "--video-codec", codec)
    master = tmp_path / "out" / "inpainted.mov"
    with av.open(str(master)) as c:
        video = c.streams.video[0]
        assert video.codec_context.name == decoded
        assert video.codec_context.pix_fmt.startswith(pix_prefix)
        assert video.average_rate == NTSC_FILM and video.frames == T
        assert len(c.streams.audio) == 1
        assert "01:00:00:00" in _timecodes(c)
    assert audio_packets(master) == audio_packets(plate[0])
    assert len(list((tmp_path / "out" / "frames").iterdir())) == T
    assert report["delivery"]["video_codec"] == codec and "inpainted.mov" in report["delivery"]["files"]
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".pw-tmp-")]


def test_master_keeps_source_timestamps(tmp_path, plate):
    _run(plate, tmp_path / "out", "--save-video")
    with av.open(str(plate[0])) as src, av.open(str(tmp_path / "out" / "inpainted.mp4")) as out:
        src_pts = sorted(p.pts * p.time_base for p in src.demux(video=0) if p.size)
        out_pts = sorted(p.pts * p.time_base for p in out.demux(video=0) if p.size)
    assert out_pts == src_pts


def test_video_only_writes_no_frames(tmp_path, plate):
    need_encoder("prores_ks")
    _run(plate, tmp_path / "out", "--video-only", "--video-codec", "prores")
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["inpainted.mov", "manifest.json", "report.json"]


def test_review_files(tmp_path, plate):
    _run(plate, tmp_path / "out", "--review")
    with av.open(str(tmp_path / "out" / "review.mp4")) as c:
        stream = c.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (2 * W, H)
        assert stream.frames == T and stream.average_rate == NTSC_FILM
        pictures = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    # the burnt-in label (white text on a black box, top left) names each frame: frames 0 and 10 differ there
    labels = [p[:14, :40].max(axis=2) > 128 for p in (pictures[0], pictures[10])]
    assert labels[0].any() and (labels[0] != labels[1]).sum() > 10
    sheet = cv2.imread(str(tmp_path / "out" / "review.png"))
    assert sheet.shape[0] == 4 * 240 and sheet.shape[1] > 2 * W * 240 / H


def test_image_sequence_master_uses_fps(tmp_path):
    need_encoder("prores_ks")
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(6):
        cv2.imwrite(str(frames / f"f.{1001 + i}.png"), np.full((H, W, 3), 40 * i % 256, np.uint8))
    code = main(["inpaint", "-i", str(frames), "-m", str(_mask(tmp_path / "m.png")), "-o", str(tmp_path / "out"),
                 "--engine", "classic", "--quiet", "--video-codec", "prores", "--fps", "23.976"])
    assert code == 0
    with av.open(str(tmp_path / "out" / "inpainted.mov")) as c:
        assert c.streams.video[0].average_rate == NTSC_FILM and c.streams.video[0].frames == 6
        assert not c.streams.audio


def test_resume_rewrites_the_master(tmp_path, plate):
    need_encoder("prores_ks")
    out = tmp_path / "out"
    _run(plate, out, "--video-codec", "prores")
    (out / "inpainted.mov").unlink()
    for name in sorted(p.name for p in (out / "frames").iterdir())[6:]:
        (out / "frames" / name).unlink()
    report = _run(plate, out, "--video-codec", "prores", "--resume")
    assert report["frames_written"] == T - 6
    with av.open(str(out / "inpainted.mov")) as c:
        assert c.streams.video[0].frames == T


def test_python_api_takes_delivery_settings(tmp_path, plate):
    import propainter_wire as pw

    need_encoder("prores_ks")
    report = pw.inpaint(plate[0], plate[1], tmp_path / "out", engine="classic", quiet=True, video_codec="prores",
                        review=True, regrain="off")
    assert {"inpainted.mov", "review.mp4", "review.png"} <= set(report["delivery"]["files"])
    assert (tmp_path / "out" / "review.png").exists()


def test_bad_delivery_values_are_one_line(tmp_path, plate, capsys):
    import propainter_wire as pw
    from propainter_wire.errors import InputError

    with pytest.raises(InputError, match="video codec"):
        pw.inpaint(plate[0], plate[1], tmp_path / "out", engine="classic", video_codec="mpeg2")
    code = main(["inpaint", "-i", str(plate[0]), "-m", str(plate[1]), "-o", str(tmp_path / "o"), "--fps", "x"])
    assert code == 2 and len(capsys.readouterr().err.strip().splitlines()) == 1
