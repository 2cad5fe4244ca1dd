"""Short test videos built with PyAV: a ramp picture, an optional audio stream and a timecode."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")


def need_encoder(name: str) -> None:
    """Skip the test when this FFmpeg build has no ``name`` encoder."""
    try:
        av.codec.Codec(name, "w")
    except Exception:
        pytest.skip(f"this FFmpeg build has no '{name}' encoder")


def ramp(i: int, width: int, height: int) -> np.ndarray:
    """(H, W, 3) uint8 test picture that changes with frame ``i``."""
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None, None]
    rgb = np.concatenate([x + 0 * y, y + 0 * x, np.full_like(x + y, (i * 17) % 256)], axis=2)
    return rgb.astype(np.uint8)


def make_source(path: Path, frames: int = 12, rate: Fraction = Fraction(24000, 1001), size=(256, 144),
                timecode: str | None = "01:00:00:00", audio: str | None = "aac", variable: bool = False) -> Path:
    """Write a test video: libx264 (or mpeg4), ``frames`` frames, optional audio and timecode.

    ``variable`` spaces the frames 1, 1.5 and 2 frame intervals apart in turn (a VFR file).
    """
    encoder = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    fmt = "mov" if path.suffix == ".mov" else "mp4"
    out = av.open(str(path), "w", format=fmt)
    video = out.add_stream(encoder, rate=rate)
    video.width, video.height = size
    video.pix_fmt = "yuv420p"
    tb = Fraction(1, 90000) if variable else 1 / rate
    video.time_base = tb
    video.codec_context.time_base = tb
    if timecode:
        video.metadata["timecode"] = timecode
    sound = None
    if audio:
        need_encoder(audio)
        sound = out.add_stream(audio, rate=48000)
        sound.layout = "stereo"
    pts = 0
    for i in range(frames):
        frame = av.VideoFrame.from_ndarray(ramp(i, *size), format="rgb24")
        frame.pts, frame.time_base = pts, tb
        pts += int(90000 / rate * (1 + (i % 3) * 0.5)) if variable else 1
        out.mux(video.encode(frame))
    out.mux(video.encode(None))
    if sound is not None:
        total = int(48000 * frames / rate)
        for start in range(0, total, 1024):
            n = min(1024, total - start)
            tone = (np.sin(np.arange(start, start + n) / 48000 * 2 * np.pi * 440) * 8000).astype(np.int16)
            block = av.AudioFrame.from_ndarray(np.stack([tone, tone]).T.reshape(1, -1), format="s16",
                                               layout="stereo")
            block.sample_rate, block.pts, block.time_base = 48000, start, Fraction(1, 48000)
            out.mux(sound.encode(block))
        out.mux(sound.encode(None))
    out.close()
    return path


def audio_packets(path: Path) -> list[bytes]:
    """The payload of every audio packet of the first audio stream, in file order."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        return [bytes(p) for p in container.demux(stream) if p.size]
