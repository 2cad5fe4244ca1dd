"""Python API: wire masks from a few clicks, and key masks carried through a shot.

- ``make_wire_masks(video, points, output)``: find the wires of a wires file in every frame.
- ``track_masks(video, keymasks, output)``: carry painted key masks by optical flow.
- ``masks_for_inpaint(video, wires_path, work_dir)``: the masks ``inpaint --wires`` uses.

Masks are 8-bit PNGs (0/255) named like the frames (``<stem>.png``; for a video
``00000.png``, ``00001.png``, ...), the layout ``inpaint -m`` reads.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..io import open_frames
from ..pipeline.stages import Stages
from .clip import fits_report, track_wire
from .frames import to_grey_u8, to_rgb_u8
from .output import REPORT, prepare_mask_dir, write_masks, write_report
from .overlap import mark_shared
from .points import WireSpec, frame_numbers, load_wires, parse_wires
from .render import mask_thickness, render_mask
from .seen import mark_partly_seen
from .track import TrackSettings, WireFit

WIRE_MASK_DIR = "wire_masks"


WIRE_GROW = 1  # px beyond each wire's soft edge (see render.py)


def read_wires(points, source) -> list[WireSpec]:
    """A wires file (path) or its decoded JSON (dict / list), checked against the clip ``source``."""
    numbers = frame_numbers(source.stems) if source.kind == "folder" else None
    if isinstance(points, (str, Path)):
        return load_wires(points, len(source), source.height, source.width, numbers)
    return parse_wires(points, len(source), source.height, source.width, numbers)


def find_wires(greys: np.ndarray, wires: list[WireSpec], settings: TrackSettings = TrackSettings(),
               progress=None) -> list[list[WireFit]]:
    """Track every wire through a clip held as (T, H, W) uint8 grey frames; per wire, one fit per frame
    (frames where two wires follow one line, ``overlap.py``, or that saw too little of a wire,
    ``seen.py``, marked for the report)."""
    def grey_at(t: int) -> np.ndarray:
        return greys[t].astype(np.float32)

    fits = [track_wire(grey_at, len(greys), spec, settings, progress) for spec in wires]
    return mark_partly_seen(mark_shared(fits, greys.shape[1:]), greys.shape[1:])


def wire_masks_array(frames: np.ndarray, wires, grow: float = WIRE_GROW, settings: TrackSettings = TrackSettings()
                     ) -> tuple[np.ndarray, list[list[WireFit]]]:
    """In-memory form: (T, H, W, 3) RGB frames and parsed wires (or their JSON) -> (T, H, W) bool masks, fits."""
    frames = np.asarray(frames)
    if not isinstance(wires, list) or (wires and not isinstance(wires[0], WireSpec)):
        wires = parse_wires(wires, len(frames), frames.shape[1], frames.shape[2])
    greys = np.stack([to_grey_u8(f) for f in frames])
    fits = find_wires(greys, wires, settings)
    masks = np.stack([render_mask(greys.shape[1:], [f[t] for f in fits], grow) > 0 for t in range(len(frames))])
    return masks, fits


def make_wire_masks(video: str | Path, points, output: str | Path, grow: float = WIRE_GROW, quiet: bool = True,
                    preview: bool = False, overwrite: bool = False,
                    settings: TrackSettings = TrackSettings()) -> dict:
    """Find the wires listed in ``points`` in every frame of ``video`` and write their masks.

    Args:
        video: frame folder or video file.
        points: the wires file (path) or its decoded JSON (see ``points.py`` for the format).
        output: mask folder (created; see ``output.prepare_mask_dir``).
        grow: pixels of margin on each side beyond the wire's soft edge (measured width plus
            its anti-aliased fringe); 1 covers the harness's wires fully at 1.3-2.1x their area.
        quiet: no progress bars.
        preview: also write ``preview.mp4``, the masks tinted over the plate.
        overwrite: replace earlier masks in ``output``.
    Returns:
        The report also written to ``output/wires_report.json``: per wire the frames
        where confidence dropped (curve carried from the neighbours), frames where it
        is out of the frame, width and confidence; frame count, seconds per stage.
    Raises:
        InputError: bad clip, bad wires file, unwritable output.
    """
    if grow < 0:
        from ..errors import InputError

        raise InputError(f"--grow must be >= 0, got {grow}")
    began = time.perf_counter()
    stages = Stages(quiet=quiet)
    source = open_frames(video)
    try:
        wires = read_wires(points, source)
        out = prepare_mask_dir(output, source.stems, overwrite, (Path(video),))
        t_len, h, w = len(source), source.height, source.width
        with stages("read", total=t_len) as bar:
            greys = np.empty((t_len, h, w), np.uint8)
            for t in range(t_len):
                greys[t] = to_grey_u8(source[t])
                bar.update()
        with stages("track", total=t_len * len(wires)) as bar:
            fits = find_wires(greys, wires, settings, lambda n: bar.update(n))
        write_masks(out, source.stems, lambda t: render_mask((h, w), [f[t] for f in fits], grow),
                    lambda t: to_rgb_u8(source[t]), stages, source.fps, preview)
    finally:
        source.close()
    seconds = time.perf_counter() - began
    report = {"clip": str(video), "frames": t_len, "width": w, "height": h, "grow": grow,
              "wires": [{**fits_report(spec.name, f), "keys": [k.index for k in spec.keys],
                         "mask_thickness_px": mask_thickness(float(np.median([x.width for x in f])), grow)}
                        for spec, f in zip(wires, fits, strict=True)],
              "seconds": {k: round(v, 3) for k, v in stages.seconds.items()},
              "seconds_per_frame": round(seconds / max(t_len, 1), 4), "preview": bool(preview)}
    write_report(out / REPORT, report)
    return report


def masks_for_inpaint(video: str | Path, wires_path: str | Path, work_dir: str | Path, grow: float = WIRE_GROW,
                      quiet: bool = True) -> Path:
    """Masks for ``inpaint --wires WIRES.json``: written to ``work_dir/wire_masks`` (replaced if there).

    The inpaint command then runs as with ``-m <returned folder>``; the folder holds one
    PNG per frame named like the frames, plus ``wires_report.json`` (ignored by the mask reader).
    """
    out = Path(work_dir) / WIRE_MASK_DIR
    make_wire_masks(video, wires_path, out, grow=grow, quiet=quiet, overwrite=True)
    return out


def track_masks(video: str | Path, keymasks: str | Path, output: str | Path, frame: int | None = None,
                grow: int = 2, quiet: bool = True, preview: bool = False, overwrite: bool = False) -> dict:
    """Carry masks painted on keyframes to every frame by optical flow (see ``keymasks.py``).

    Args:
        keymasks: a folder of masks named like their frames, or one mask image (with ``frame``).
        frame: the frame index (frame number for numbered sequences) of a single mask image.
    Returns:
        The report also written to ``output/track_report.json``.
    """
    from .keymasks import track_key_masks

    return track_key_masks(video, keymasks, output, frame=frame, grow=grow, quiet=quiet, preview=preview,
                           overwrite=overwrite)
