"""Video codecs a master can be written in, and RGB(A) frames turned into encoder frames.

Each ``--video-codec`` choice is a frozen ``VideoCodec``: the FFmpeg encoder, its
pixel format, the container and the encoder options. The mezzanine codecs are
10-bit and chroma 4:2:2 or better, the formats editors cut in:

========== ============ ================ ===================== =========
choice     encoder      pixel format     profile               container
========== ============ ================ ===================== =========
h264       libx264      yuv420p (8-bit)  crf 17 (preview)      .mp4
h265       libx265      yuv420p10le      crf 18, tag hvc1      .mp4
prores     prores_ks    yuv422p10le      3 = 422 HQ            .mov
prores4444 prores_ks    yuva444p10le     4 = 4444 (alpha kept) .mov
dnxhr      dnxhd        yuv422p10le      dnxhr_hqx             .mov
========== ============ ================ ===================== =========

PyAV is imported lazily: importing this module costs nothing on a machine without it.
"""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

import numpy as np

from ..errors import InputError


@dataclasses.dataclass(frozen=True)
class VideoCodec:
    """One ``--video-codec`` choice.

    Attributes:
        name: the CLI name (``h264``, ``h265``, ``prores``, ``prores4444``, ``dnxhr``).
        encoder: FFmpeg encoder name.
        pix_fmt: the encoder's input pixel format.
        container: FFmpeg muxer name (``mp4`` or ``mov``).
        suffix: file extension of the master, with the dot.
        bit_depth: bits per sample written (8 or 10).
        alpha: whether the pixel format carries an alpha plane.
        options: encoder options (FFmpeg ``-key value`` pairs, strings).
        codec_tag: four-character code written in the container, or None for the muxer's default.
        description: one line for help texts and docs.
    """

    name: str
    encoder: str
    pix_fmt: str
    container: str
    suffix: str
    bit_depth: int
    alpha: bool
    options: MappingProxyType
    codec_tag: str | None
    description: str


def _codec(name, encoder, pix_fmt, container, bit_depth, alpha, options, tag, description) -> VideoCodec:
    return VideoCodec(name, encoder, pix_fmt, container, "." + container, bit_depth, alpha,
                      MappingProxyType(dict(options)), tag, description)


# crf 17 for h264 is the existing preview's setting (visually lossless for review);
# h265 at crf 18 gives about the same quality at roughly 60 % of the size.
# prores_ks profile numbers: 0 proxy, 1 lt, 2 standard, 3 hq, 4 4444, 5 4444xq;
# vendor apl0 makes players that check the vendor (Final Cut, Resolve) treat it as Apple's.
CODECS: MappingProxyType = MappingProxyType({c.name: c for c in (
    _codec("h264", "libx264", "yuv420p", "mp4", 8, False, {"crf": "17", "preset": "medium"}, None,
           "H.264 8-bit 4:2:0 .mp4 (preview, plays everywhere)"),
    _codec("h265", "libx265", "yuv420p10le", "mp4", 10, False, {"crf": "18", "preset": "medium",
                                                                  "x265-params": "log-level=error"}, "hvc1",
           "H.265/HEVC 10-bit 4:2:0 .mp4 (small 10-bit review copy)"),
    _codec("prores", "prores_ks", "yuv422p10le", "mov", 10, False, {"profile": "3", "vendor": "apl0"}, None,
           "Apple ProRes 422 HQ 10-bit 4:2:2 .mov (master)"),
    _codec("prores4444", "prores_ks", "yuva444p10le", "mov", 10, True,
           {"profile": "4", "vendor": "apl0", "alpha_bits": "16"}, None,
           "Apple ProRes 4444 10-bit 4:4:4 with alpha .mov (master)"),
    _codec("dnxhr", "dnxhd", "yuv422p10le", "mov", 10, False, {"profile": "dnxhr_hqx"}, None,
           "Avid DNxHR HQX 10-bit 4:2:2 .mov (master)"),
)})
DEFAULT_CODEC = "h264"


def get_codec(name: str) -> VideoCodec:
    """The codec called ``name``; ``InputError`` listing the choices when unknown."""
    try:
        return CODECS[name.lower()]
    except KeyError:
        raise InputError(f"unknown video codec '{name}' (choose from {', '.join(CODECS)})") from None


def check_encoder(codec: VideoCodec) -> None:
    """Raise ``InputError`` when the installed PyAV/FFmpeg lacks ``codec``'s encoder or pixel format."""
    try:
        import av
    except ImportError:
        raise InputError(f"--video-codec {codec.name} needs PyAV (pip install av)") from None
    try:
        found = av.codec.Codec(codec.encoder, "w")
    except Exception:  # av.codec.codec.UnknownCodecError, whose path moved between PyAV versions
        raise InputError(f"this FFmpeg build has no '{codec.encoder}' encoder, needed by "
                         f"--video-codec {codec.name}") from None
    formats = [f.name for f in (found.video_formats or ())]
    if formats and codec.pix_fmt not in formats:
        raise InputError(f"encoder '{codec.encoder}' here cannot write {codec.pix_fmt} "
                         f"(it offers {', '.join(formats)})")


def even_size(width: int, height: int, codec: VideoCodec) -> tuple[int, int]:
    """The frame size the encoder accepts: 4:2:0 and 4:2:2 need an even width, 4:2:0 an even height.

    Frames are padded by repeating the last column/row (``pad_frame``), never scaled.
    """
    sub_w = "420" in codec.pix_fmt or "422" in codec.pix_fmt
    sub_h = "420" in codec.pix_fmt
    return width + (width % 2 if sub_w else 0), height + (height % 2 if sub_h else 0)


def pad_frame(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """``frame`` (H, W, C) padded at the right/bottom by edge repetition to (height, width, C)."""
    h, w = frame.shape[:2]
    if (h, w) == (height, width):
        return frame
    if h > height or w > width:
        raise ValueError(f"frame {w}x{h} is larger than the master's {width}x{height}")
    return np.pad(frame, ((0, height - h), (0, width - w), (0, 0)), mode="edge")


def to_rgb16(frame: np.ndarray, alpha: bool) -> np.ndarray:
    """An RGB(A) frame as ``uint16`` full-range samples, the encoders' common input.

    Args:
        frame: (H, W, 3) RGB or (H, W, 4) RGBA; ``uint8`` (0-255), ``uint16`` (0-65535) or
            float (display-referred, 0-1; values outside are clipped: a scene-linear float
            frame must go through a display transform first, see ``review.display_transform``).
        alpha: return 4 channels (an RGB frame gets an opaque alpha) instead of 3 (alpha dropped).
    Returns:
        (H, W, 3 or 4) ``uint16``; 8-bit values v become v * 257 so 255 maps to 65535.
    """
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] not in (3, 4):
        raise ValueError(f"expected an (H, W, 3|4) frame, got {frame.shape}")
    if frame.dtype == np.uint8:
        out = frame.astype(np.uint16) * 257
    elif frame.dtype == np.uint16:
        out = frame
    elif np.issubdtype(frame.dtype, np.floating):
        out = np.rint(np.clip(np.nan_to_num(frame, nan=0.0), 0.0, 1.0) * 65535.0).astype(np.uint16)
    else:
        raise ValueError(f"cannot encode {frame.dtype} samples")
    if alpha and out.shape[2] == 3:
        out = np.concatenate([out, np.full(out.shape[:2] + (1,), 65535, np.uint16)], axis=2)
    elif not alpha and out.shape[2] == 4:
        out = out[:, :, :3]
    return np.ascontiguousarray(out)


# FFmpeg's AVColorSpace numbers -> the swscale matrices PyAV's reformatter offers.
# 1 bt709, 5 bt470bg, 6 smpte170m, 7 smpte240m, 9/10 bt2020; untagged sources get BT.709,
# the matrix of every HD/UHD SDR master.
_MATRIX = {1: "ITU709", 4: "FCC", 5: "ITU601", 6: "SMPTE170M", 7: "SMPTE240M", 9: "BT2020", 10: "BT2020"}


def encoder_frame(frame: np.ndarray, codec: VideoCodec, colorspace: int | None = None,
                  full_range: bool = False):
    """An ``av.VideoFrame`` in ``codec.pix_fmt`` from an RGB(A) frame.

    The frame is built at 16 bits (``rgb48le``/``rgba64le``), so 10-bit codecs get
    10 significant bits from 16-bit or float sources, then converted by swscale with
    the matrix of ``colorspace`` (AVColorSpace number; None or unknown -> BT.709) into
    limited ("tv", 64-940 at 10 bits) or, with ``full_range``, full range.

    Args:
        frame: (H, W, 3|4), see ``to_rgb16``; H and W already as ``even_size`` asks.
        codec: the target codec.
        colorspace: AVColorSpace number of the master (the source's tag when copied).
        full_range: encode full ("pc") range; the source's range tag decides.
    """
    import av

    rgb = to_rgb16(frame, codec.alpha)
    fmt = "rgba64le" if codec.alpha else "rgb48le"
    src = av.VideoFrame.from_ndarray(rgb, format=fmt)
    matrix = _MATRIX.get(colorspace or 1, "ITU709")
    try:
        from av.video.reformatter import ColorRange, Colorspace

        picture = src.reformat(format=codec.pix_fmt, dst_colorspace=Colorspace[matrix],
                               dst_color_range=ColorRange.JPEG if full_range else ColorRange.MPEG)
    except (ImportError, TypeError, KeyError):  # PyAV before 14: no range argument, limited range
        picture = src.reformat(format=codec.pix_fmt, dst_colorspace=matrix.lower())
    if codec.alpha:
        _round_alpha(picture, rgb[:, :, 3], codec.bit_depth)
    return picture


def _round_alpha(picture, alpha: np.ndarray, bits: int) -> None:
    """Overwrite ``picture``'s alpha plane (the last) with ``alpha`` (uint16) rounded to the nearest
    ``bits``-bit level. swscale's 16 -> 10-bit rescale lands up to one level off (an 8-bit alpha came
    back from a ProRes 4444 master 80/65535 away, 1.25 levels); rounded here it stays within half a
    level, and a 10-bit alpha (a ProRes 4444 source's) comes back exactly."""
    peak = (1 << bits) - 1
    plane = picture.planes[-1]
    dtype = np.dtype("<u2") if bits > 8 else np.dtype(np.uint8)
    rows = np.frombuffer(plane, dtype).reshape(plane.height, -1)
    h, w = alpha.shape
    rows[:h, :w] = np.rint(alpha.astype(np.float32) * (peak / 65535.0)).astype(dtype)
