"""Masters: codec, 10-bit pixel format, audio copied packet for packet, timecode, exact rate, VFR."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from delivery_sources import audio_packets, make_source, need_encoder, ramp
from propainter_wire.delivery.codecs import CODECS, even_size, get_codec, to_rgb16
from propainter_wire.delivery.master import MasterWriter, probe_source
from propainter_wire.delivery.timing import advance_timecode, frames_to_timecode, parse_rate, timecode_to_frames
from propainter_wire.errors import InputError

av = pytest.importorskip("av")
NTSC_FILM = Fraction(24000, 1001)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    need_encoder("libx264")
    return make_source(tmp_path_factory.mktemp("src") / "plate.mov")


def _write(path, codec, info, frames=12, size=(256, 144), **kwargs):
    w, h = size
    with MasterWriter(path, codec, size, source_info=info, **kwargs) as master:
        for i in range(frames):
            master.write(ramp(i, w, h))
    return path


@pytest.mark.parametrize("name, decoded, pix_prefix", [
    ("prores", "prores", "yuv422p10"), ("dnxhr", "dnxhd", "yuv422p10"), ("h265", "hevc", "yuv420p10"),
    ("h264", "h264", "yuv420p")])
def test_master_streams(tmp_path, source, name, decoded, pix_prefix):
    codec = get_codec(name)
    need_encoder(codec.encoder)
    info = probe_source(source)
    out = _write(tmp_path / f"master{codec.suffix}", codec, info)
    with av.open(str(out)) as c:
        video = c.streams.video[0]
        assert video.codec_context.name == decoded
        assert video.codec_context.pix_fmt.startswith(pix_prefix)
        assert video.average_rate == NTSC_FILM
        assert video.frames == 12
        assert len(c.streams.audio) == 1
        timecodes = [s.metadata.get("timecode") for s in c.streams] + [c.metadata.get("timecode")]
        assert "01:00:00:00" in timecodes
    assert audio_packets(out) == audio_packets(source)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".pw-tmp-")]


def test_probe_reads_rate_timecode_audio(source):
    info = probe_source(source)
    assert info.rate == NTSC_FILM and not info.variable_rate
    assert info.timecode == "01:00:00:00" and info.frame_count == 12
    assert [a.codec for a in info.audio] == ["aac"] and info.audio[0].channels == 2
    assert not info.alpha


def test_prores4444_keeps_alpha(tmp_path):
    need_encoder("prores_ks")
    h, w = 64, 96
    alpha = np.zeros((h, w, 1), np.uint8)
    alpha[:, w // 2:] = 255
    with MasterWriter(tmp_path / "a.mov", "prores4444", (w, h), rate=25) as master:
        for i in range(3):
            master.write(np.concatenate([ramp(i, w, h), alpha], axis=2))
    info = probe_source(tmp_path / "a.mov")
    assert info.alpha and info.rate == 25
    with av.open(str(tmp_path / "a.mov")) as c:
        frame = next(c.decode(video=0)).to_ndarray(format="rgba64le")
    assert frame[:, : w // 2 - 2, 3].max() < 1024 and frame[:, w // 2 + 2:, 3].min() > 64000


def test_image_sequence_uses_fps_and_pads_odd_sizes(tmp_path):
    need_encoder("prores_ks")
    w, h = 63, 35
    with MasterWriter(tmp_path / "seq.mov", "prores", (w, h), fps=parse_rate("23.976")) as master:
        for i in range(4):
            master.write(ramp(i, w, h).astype(np.float32) / 255)
    info = probe_source(tmp_path / "seq.mov")
    assert info.rate == NTSC_FILM and info.frame_count == 4 and (info.width, info.height) == (64, 35)
    assert info.timecode is None


def test_ten_bit_values_survive(tmp_path):
    """A 16-bit ramp keeps 10 significant bits: four times as many levels as 8-bit would."""
    need_encoder("prores_ks")
    w, h = 256, 16
    grey = np.repeat(np.linspace(16384, 16384 + 1023 * 16, w).astype(np.uint16)[None, :, None], h, 0)
    with MasterWriter(tmp_path / "r.mov", "prores", (w, h), rate=24) as master:
        master.write(np.repeat(grey, 3, axis=2))
    with av.open(str(tmp_path / "r.mov")) as c:
        y = next(c.decode(video=0)).to_ndarray(format="rgb48le")[h // 2, :, 1]
    assert len(np.unique(y >> 6)) > 150  # 8-bit would give at most 64 levels over this span


def test_variable_rate_kept_or_refused(tmp_path):
    need_encoder("prores_ks")
    src = make_source(tmp_path / "vfr.mp4", frames=9, audio=None, timecode=None, variable=True)
    info = probe_source(src)
    assert info.variable_rate
    with pytest.raises(InputError, match="variable frame rate") as caught:
        MasterWriter(tmp_path / "m.mov", "prores", (256, 144), source_info=info, vfr="refuse")
    assert "vfr.mp4" in str(caught.value) and "\n" not in str(caught.value)
    _write(tmp_path / "k.mov", "prores", info, frames=9)
    kept = probe_source(tmp_path / "k.mov")
    seconds = lambda i: np.asarray(i.pts) * float(i.time_base)  # noqa: E731
    np.testing.assert_allclose(seconds(kept) - seconds(kept)[0], seconds(info) - seconds(info)[0], atol=1e-3)


def test_fps_conflicting_with_source_audio_is_refused(tmp_path, source):
    with pytest.raises(InputError, match="--fps"):
        MasterWriter(tmp_path / "m.mov", "prores", (256, 144), source_info=probe_source(source), fps=25)


def test_partial_range_moves_timecode(tmp_path, source):
    need_encoder("prores_ks")
    out = _write(tmp_path / "p.mov", "prores", probe_source(source), frames=4, first_frame=5)
    assert probe_source(out).timecode == "01:00:00:05"


def test_failed_write_leaves_nothing(tmp_path):
    need_encoder("prores_ks")
    with pytest.raises(ValueError):
        with MasterWriter(tmp_path / "x.mov", "prores", (32, 16), rate=24) as master:
            master.write(np.zeros((16, 30, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_wrong_suffix_and_unknown_codec(tmp_path):
    with pytest.raises(ValueError, match=".mov"):
        MasterWriter(tmp_path / "x.mp4", "prores", (32, 16), rate=24)
    with pytest.raises(InputError, match="choose from"):
        get_codec("mpeg2")


def test_codec_table():
    assert {c.container for c in CODECS.values()} == {"mp4", "mov"}
    assert get_codec("prores").options["profile"] == "3" and get_codec("prores4444").alpha
    assert get_codec("dnxhr").options["profile"] == "dnxhr_hqx"
    assert even_size(63, 35, get_codec("h264")) == (64, 36) and even_size(63, 35, get_codec("prores4444")) == (63, 35)
    assert to_rgb16(np.full((1, 1, 3), 255, np.uint8), alpha=True).tolist() == [[[65535] * 4]]
    assert to_rgb16(np.full((1, 1, 3), 2.0, np.float32), alpha=False).max() == 65535


@pytest.mark.parametrize("rate, drop", [(Fraction(30000, 1001), True), (Fraction(24000, 1001), False),
                                        (Fraction(60000, 1001), True), (Fraction(25), False)])
def test_timecode_round_trip(rate, drop):
    for n in (0, 1, 1799, 1800, 17982, 17983, 107892, 1234567):
        assert timecode_to_frames(frames_to_timecode(n, rate, drop), rate) == n
    assert frames_to_timecode(1800, Fraction(30000, 1001), True) == "00:01:00;02"
    assert advance_timecode("00:59:59:23", 1, Fraction(24)) == "01:00:00:00"


def test_parse_rate():
    assert parse_rate("23.976") == NTSC_FILM and parse_rate("29.97") == Fraction(30000, 1001)
    assert parse_rate("24000/1001") == NTSC_FILM and parse_rate("25") == 25 and parse_rate("12.5") == Fraction(25, 2)
    for bad in ("abc", "0", "-24", "1/0"):
        with pytest.raises(InputError):
            parse_rate(bad)
