"""The image and video I/O stack: OpenImageIO and OpenColorIO versions, the formats they read, PyAV's codecs.

Never raises: a library that cannot be imported is reported as "not available (...)".
"""

from __future__ import annotations

# Codecs a plate or review movie usually comes in (reported when PyAV's FFmpeg can decode them).
VIDEO_CODECS = ("h264", "hevc", "prores", "dnxhd", "mjpeg", "vp9", "av1", "ffv1", "png", "rawvideo")


def io_stack() -> dict[str, str]:
    """name -> text: ``openimageio``, ``image formats``, ``opencolorio`` (and its config), ``video codecs``."""
    out: dict[str, str] = {}
    try:
        import OpenImageIO as oiio

        out["openimageio"] = oiio.__version__
        formats = [f.split(":")[0] for f in oiio.get_string_attribute("extension_list").split(";") if f]
        out["image formats"] = ", ".join(formats)
    except Exception as exc:  # an absent or broken install is what this reports
        out["openimageio"] = f"not available ({type(exc).__name__}: {exc})"
        out["image formats"] = "png, jpg, bmp, tif through OpenCV (pixels only; EXR and DPX need OpenImageIO)"
    try:
        import os

        import PyOpenColorIO as ocio

        config = os.environ.get("OCIO") or "ocio://default (built-in ACES)"
        out["opencolorio"] = f"{ocio.__version__}; config {config}"
    except Exception as exc:
        out["opencolorio"] = f"not available ({type(exc).__name__}: {exc})"
    try:
        import av

        decodable = [c for c in VIDEO_CODECS if c in av.codecs_available]
        out["video codecs"] = ", ".join(decodable) + ("; libx264 encoder" if "libx264" in av.codecs_available else "")
    except Exception as exc:
        out["video codecs"] = f"not available ({type(exc).__name__}: {exc})"
    return out
