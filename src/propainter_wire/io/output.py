"""Writing results: the output folder, frames, JSON files and an H.264 preview video.

Every file is written atomically: to a temporary name (``.pw-tmp-...``) in the same
folder, then renamed over the final name, so an interrupted run never leaves a
half-written file under a final name. Write failures (disk full, read-only folder)
are raised as ``InputError`` naming the file.

Layout of an output folder (names this tool owns)::

    out/
      frames/<input name>      FRAMES_DIR (each input frame's name, format and header)
      inpainted.mp4            VIDEO_NAME (with --save-video; inpainted.mov for the .mov codecs)
      review.mp4, review.png   with --review (docs/delivery.md)
      report.json              REPORT_NAME
      manifest.json            MANIFEST_NAME
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import logging
import os
import secrets
import shutil
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..samples import to_uint8_half_up
from .channels import pick_channels

log = logging.getLogger("propainter_wire")

FRAMES_DIR = "frames"
REPORT_NAME = "report.json"
VIDEO_NAME = "inpainted.mp4"
MANIFEST_NAME = "manifest.json"
# with the delivery files (docs/delivery.md): the .mov master and the review files
OUTPUT_ENTRIES = (FRAMES_DIR, REPORT_NAME, VIDEO_NAME, MANIFEST_NAME, "inpainted.mov", "review.mp4", "review.png")
TEMP_PREFIX = ".pw-tmp-"
# Files operating systems drop into folders; never counted as someone's data.
_JUNK = (".DS_Store", "Thumbs.db", "desktop.ini")


def _os_error(exc: OSError, path: Path, action: str = "cannot write") -> InputError:
    reason = exc.strerror or (os.strerror(exc.errno) if exc.errno else None) or str(exc)
    return InputError(f"{action}: {reason}", path)


def _temp_path(path: Path) -> Path:
    """A fresh temporary name beside ``path`` that keeps its extension."""
    return path.with_name(f"{TEMP_PREFIX}{secrets.token_hex(4)}-{path.name}")


def _remove_quietly(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


# ---------------------------------------------------------------------------
# output folder
# ---------------------------------------------------------------------------
def _is_within(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def prepare_output_dir(out_dir: str | Path, input_paths: Iterable[str | Path | None], overwrite: bool = False,
                       resume: bool = False) -> Path:
    """Check and create the output folder; return its resolved path.

    Refused (``InputError``):

    - the output folder is an input folder or inside one (the folder holding an input
      *file*, such as a video, is fine), or an input lies where this tool writes
      (``out/frames`` being the input frames);
    - the folder exists and is not empty, unless ``overwrite`` or ``resume``;
    - with ``resume``: the folder holds files this tool did not write.

    With ``overwrite`` only this tool's entries (``OUTPUT_ENTRIES`` and stale
    temporary files) are deleted; unrelated files are left alone. With ``resume``
    existing results are kept (stale temporary files are removed).
    """
    out = Path(out_dir).expanduser().resolve()
    if overwrite and resume:
        raise InputError("choose one of --overwrite and --resume", out)
    owned = [out / name for name in OUTPUT_ENTRIES]
    for given in input_paths:
        if given is None:
            continue
        src = Path(given).expanduser().resolve()
        if src.is_dir() and _is_within(out, src):
            raise InputError(f"output folder is inside the input folder {src}", out)
        if src == out:
            raise InputError("output folder is an input file", out)
        for entry in owned:
            if _is_within(src, entry):
                raise InputError(f"input {src} lies where the output is written ({entry.name})", out)
    if out.exists() and not out.is_dir():
        raise InputError("output path exists and is not a folder", out)
    if out.is_dir():
        _clear_previous(out, overwrite, resume)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _os_error(exc, out, "cannot create output folder") from exc
    return out


def _clear_previous(out: Path, overwrite: bool, resume: bool) -> None:
    try:
        names = [n for n in os.listdir(out) if n not in _JUNK]
    except OSError as exc:
        raise _os_error(exc, out, "cannot list output folder") from exc
    if not names:
        return
    ours = [n for n in names if n in OUTPUT_ENTRIES or n.startswith(TEMP_PREFIX)]
    foreign = sorted(set(names) - set(ours))
    if not (overwrite or resume):
        raise InputError("output folder is not empty (use --overwrite to replace earlier results "
                         "or --resume to continue a run)", out)
    if resume and foreign:
        raise InputError(f"output folder holds files this tool did not write ({', '.join(foreign[:3])}"
                         f"{', ...' if len(foreign) > 3 else ''}): choose another folder or use --overwrite", out)
    for name in ours:
        if resume and not name.startswith(TEMP_PREFIX):
            continue
        target = out / name
        try:
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            else:
                target.unlink()
        except OSError as exc:
            raise _os_error(exc, target, "cannot remove earlier result") from exc
    if foreign:
        log.info("%s: keeping %d unrelated file(s)", out, len(foreign))


# ---------------------------------------------------------------------------
# files
# ---------------------------------------------------------------------------
def write_image(path: str | Path, image: np.ndarray) -> None:
    """Write one image atomically (:func:`propainter_wire.io.oiio.write_image`)."""
    from .oiio import write_image as write

    write(path, image)


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    temp = _temp_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(temp, "xb") as f:
            f.write(data)
        os.replace(temp, path)
    except OSError as exc:
        _remove_quietly(temp)
        raise _os_error(exc, path) from exc


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def write_json(path: str | Path, obj) -> None:
    """Write ``obj`` as indented JSON atomically (numpy values, paths and dataclasses allowed)."""
    text = json.dumps(obj, indent=2, default=_json_default) + "\n"
    _atomic_write_bytes(Path(path), text.encode("utf-8"))


# ---------------------------------------------------------------------------
# video
# ---------------------------------------------------------------------------
class VideoWriter:
    """H.264 mp4 (yuv420p) written atomically; a context manager.

    Frames are ``(height, width, 3)`` RGB: ``uint8``, ``uint16`` (scaled to 8 bits)
    or float in [0, 1]. yuv420p needs even sizes: an odd width or height is padded
    by repeating the last column/row, so the video is at most one pixel larger.
    Uses PyAV (libx264, CRF 17); without PyAV, OpenCV's 'mp4v' (MPEG-4 part 2).
    The file appears under its final name only when the writer closes without error.

    Usage::

        with VideoWriter(out / VIDEO_NAME, fps=25.0, width=W, height=H) as video:
            for frame in frames:
                video.write(frame)
    """

    def __init__(self, path: str | Path, fps: float, width: int, height: int, crf: int = 17):
        from .video import load_av

        self.path = Path(path)
        self.fps = float(fps) if fps and fps > 0 else 25.0
        self.width = int(width)
        self.height = int(height)
        self.coded_width = self.width + self.width % 2
        self.coded_height = self.height + self.height % 2
        self.frames_written = 0
        self._temp = _temp_path(self.path)
        self._av = load_av()
        self._container = None
        self._stream = None
        self._cv2_writer = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self._av is not None:
                self._open_pyav(crf)
            else:
                self._open_cv2()
        except OSError as exc:
            self._abort()
            raise _os_error(exc, self.path) from exc

    @property
    def backend(self) -> str:
        return "pyav" if self._av is not None else "opencv"

    def _open_pyav(self, crf: int) -> None:
        av = self._av
        codec = next((c for c in ("libx264", "h264", "mpeg4") if c in av.codecs_available), "mpeg4")
        try:
            self._container = av.open(str(self._temp), mode="w", format="mp4", options={"movflags": "+faststart"})
            rate = Fraction(self.fps).limit_denominator(100000)
            self._stream = self._container.add_stream(codec, rate=rate)
            self._stream.width = self.coded_width
            self._stream.height = self.coded_height
            self._stream.pix_fmt = "yuv420p"
            if codec == "libx264":
                self._stream.options = {"crf": str(crf), "preset": "medium"}
        except av.FFmpegError as exc:
            raise OSError(getattr(exc, "errno", None) or errno.EIO, _ffmpeg_text(exc)) from exc

    def _open_cv2(self) -> None:
        import cv2

        fourcc = cv2.VideoWriter_fourcc(*"mp4v")
        self._cv2_writer = cv2.VideoWriter(str(self._temp), fourcc, self.fps, (self.coded_width, self.coded_height))
        if not self._cv2_writer.isOpened():
            raise OSError(errno.EIO, "OpenCV cannot open an mp4v writer here")

    def write(self, frame: np.ndarray) -> None:
        """Append one ``(height, width, 3)`` RGB frame."""
        frame = np.asarray(frame)
        if frame.shape != (self.height, self.width, 3):
            raise ValueError(f"frame of shape {frame.shape}, writer expects {(self.height, self.width, 3)}")
        if not (frame.dtype in (np.uint8, np.uint16) or np.issubdtype(frame.dtype, np.floating)):
            raise ValueError(f"cannot write {frame.dtype} frames to a video")
        frame = to_uint8_half_up(frame)
        if (self.coded_height, self.coded_width) != (self.height, self.width):
            frame = np.pad(frame, ((0, self.coded_height - self.height), (0, self.coded_width - self.width), (0, 0)),
                           mode="edge")
        with self._failures():
            if self._av is not None:
                picture = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
                for packet in self._stream.encode(picture):
                    self._container.mux(packet)
            else:
                self._cv2_writer.write(pick_channels(frame, (2, 1, 0)))
        self.frames_written += 1

    def close(self) -> None:
        """Flush, close and move the file to its final name (no file at all when no frame was written)."""
        if self._container is None and self._cv2_writer is None:
            return
        if self.frames_written == 0:
            log.warning("%s: no frame written, no video made", self.path)
            self._abort()
            return
        with self._failures():
            if self._av is not None:
                for packet in self._stream.encode(None):
                    self._container.mux(packet)
                self._container.close()
                self._container = None
            else:
                self._cv2_writer.release()
                self._cv2_writer = None
            os.replace(self._temp, self.path)

    @contextlib.contextmanager
    def _failures(self) -> Iterator[None]:
        """A failed write or close drops the unfinished file and becomes an ``InputError`` naming the video."""
        try:
            yield
        except OSError as exc:
            self._abort()
            raise _os_error(exc, self.path) from exc
        except self._ffmpeg_errors() as exc:
            self._abort()
            raise InputError(f"cannot write: {_ffmpeg_text(exc)}", self.path) from exc

    def _ffmpeg_errors(self) -> tuple[type[BaseException], ...]:
        return (self._av.FFmpegError,) if self._av is not None else ()

    def _abort(self) -> None:
        """Drop the unfinished file."""
        try:
            if self._container is not None:
                self._container.close()
            if self._cv2_writer is not None:
                self._cv2_writer.release()
        except Exception:  # already failing: the original error is what matters
            pass
        self._container = None
        self._cv2_writer = None
        _remove_quietly(self._temp)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self._abort()


def _ffmpeg_text(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
