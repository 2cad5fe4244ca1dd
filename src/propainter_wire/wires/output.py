"""Where masks go: one 8-bit PNG per frame, named like the frame, in a folder of their own.

``inpaint -m MASKS`` pairs a mask folder with the frames by sorted (natural) order,
so the folder must hold exactly one image per frame: a folder that already holds
other images is refused unless ``overwrite`` (then only images named like this
clip's masks, the report and the preview are replaced).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io import IMAGE_EXTS, VideoWriter, write_image, write_json
from .render import overlay

REPORT = "wires_report.json"
TRACK_REPORT = "track_report.json"
PREVIEW = "preview.mp4"


def prepare_mask_dir(out: str | Path, stems: list[str], overwrite: bool, inputs: tuple[Path, ...] = ()) -> Path:
    """Create the mask folder; refuse one holding other images (or an input) unless ``overwrite``."""
    out = Path(out).expanduser().resolve()
    for given in inputs:
        src = Path(given).expanduser().resolve()
        if src == out:
            raise InputError("the mask folder is an input; choose another output folder", out)
    if out.exists() and not out.is_dir():
        raise InputError("output path exists and is not a folder", out)
    if out.is_dir():
        ours = {f"{stem}.png" for stem in stems} | {REPORT, TRACK_REPORT, PREVIEW}
        present = [p for p in out.iterdir() if not p.name.startswith(".")]
        foreign = [p.name for p in present if p.name not in ours and p.suffix.lower() in IMAGE_EXTS]
        if foreign:
            raise InputError(f"the mask folder holds other images ({', '.join(sorted(foreign)[:3])}): "
                             "masks are paired with frames by sorted order; choose an empty folder", out)
        if any(p.name in ours for p in present) and not overwrite:
            raise InputError("the mask folder holds earlier masks (use --overwrite to replace them)", out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create folder: {exc.strerror}", out) from exc
    return out


def write_mask(out: Path, stem: str, mask: np.ndarray) -> None:
    """Write one (H, W) mask (bool or 0/255 uint8) as ``<stem>.png``, 0/255, atomically."""
    write_image(out / f"{stem}.png", np.where(np.asarray(mask) > 0, 255, 0).astype(np.uint8))


def write_masks(out: Path, stems: list[str], mask_at, frame_at, stages, fps: float | None, preview: bool) -> None:
    """The ``write`` stage shared by ``mask wire`` and ``mask track``: one PNG per frame, and the preview.

    Args:
        stems: frame stems, in order; ``mask_at(t)`` gives frame ``t``'s (H, W) mask and
            ``frame_at(t)`` its (H, W, 3) uint8 RGB plate (read only for the preview).
        stages: the run's ``Stages`` (a ``write`` bar).
    """
    with stages("write", total=len(stems)) as bar:
        writer = None
        try:
            for t, stem in enumerate(stems):
                mask = mask_at(t)
                write_mask(out, stem, mask)
                if preview:
                    frame = frame_at(t)
                    if writer is None:
                        writer = preview_writer(out, fps, frame.shape[0], frame.shape[1])
                    writer.write(overlay(frame, mask))
                bar.update()
        finally:
            if writer is not None:
                writer.close()


def write_report(path: Path, report: dict) -> None:
    write_json(path, report)


def preview_writer(out: Path, fps: float | None, height: int, width: int) -> VideoWriter:
    """The overlay video ``preview.mp4`` (H.264 through PyAV)."""
    return VideoWriter(out / PREVIEW, fps=fps or 25.0, width=width, height=height)
