"""``manifest.json``: what a run records before its first frame, so ``--resume`` can check it is the same run.

The manifest holds a *fingerprint* (inputs, their size and sample type, a cheap digest of the
input files, the version and every setting that changes the result) and whether the run
completed. A resumed run must have the same fingerprint; otherwise it is refused with the
first differences named.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ..config import InpaintConfig
from ..errors import InputError
from ..io.output import FRAMES_DIR, MANIFEST_NAME, write_json

# settings that change what is computed: a resumed run must have the same ones
RESULT_SETTINGS = ("engine", "weights_dir", "device", "precision", "mask_dilation", "flow_mask_dilation",
                   "mask_threshold", "neighbor_length", "ref_stride", "subvideo_length", "raft_iters",
                   "max_side", "width", "height", "resize_ratio", "classic_flow", "mask_channel", "invert_mask",
                   "soft_matte", "frames", "start_number", "colorspace", "regrain")


def content_signature(path: Path) -> str:
    """A cheap digest of a file or folder's entries (names, sizes, modification times): no decoding."""
    digest = hashlib.sha1()
    try:
        if path.is_dir():
            with os.scandir(path) as it:
                entries = sorted(it, key=lambda e: e.name)
            for entry in entries:
                if entry.is_file():
                    st = entry.stat()
                    digest.update(f"{entry.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        else:
            st = path.stat()
            digest.update(f"{st.st_size}\0{st.st_mtime_ns}".encode())
    except OSError:
        return "unreadable"
    return digest.hexdigest()[:16]


def fingerprint(config: InpaintConfig, video: Path, mask: Path, source) -> dict:
    """What a resumed run must share with the interrupted one (``source``: the opened clip)."""
    from .. import __version__

    settings = {k: getattr(config, k) for k in RESULT_SETTINGS}
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in settings.items()}
    return {"input": str(video.resolve()), "mask": str(mask.resolve()), "frames": len(source),
            "size": [source.width, source.height], "dtype": str(source.dtype), "stems_head": source.stems[:3],
            "numbers_head": (source.numbers or [])[:3],
            "input_signature": content_signature(video), "mask_signature": content_signature(mask),
            "version": __version__, "settings": settings}


def describe_change(previous: dict, current: dict) -> str:
    """The first differences between two fingerprints, for the resume error."""
    changed = []
    for key in sorted(set(previous) | set(current)):
        if key == "settings":
            continue
        if previous.get(key) != current.get(key):
            changed.append({"input_signature": "input files", "mask_signature": "mask files"}.get(key, key))
    old, new = previous.get("settings") or {}, current["settings"]
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            changed.append(f"{key} {old.get(key)!r} -> {new.get(key)!r}")
    return ", ".join(changed[:4]) + (", ..." if len(changed) > 4 else "")


def start_manifest(out_dir: Path, fingerprint: dict, total: int, resume: bool) -> bool:
    """Record the run before any frame is written; on resume, check it is the same run.

    Returns:
        whether a new manifest was written (False: resuming with the existing one).
    Raises:
        InputError: resuming with an unreadable manifest, another run's manifest, or frames
            but no manifest.
    """
    path = out_dir / MANIFEST_NAME
    if resume and path.exists():
        try:
            previous = json.loads(path.read_text())
        except (OSError, ValueError):
            raise InputError("manifest is unreadable: cannot resume (use --overwrite)", path) from None
        if not isinstance(previous, dict) or previous.get("fingerprint") != fingerprint:
            fp = previous.get("fingerprint") if isinstance(previous, dict) else None
            what = describe_change(fp, fingerprint) if isinstance(fp, dict) else "unknown manifest"
            raise InputError(f"the interrupted run had other inputs or settings ({what}): cannot resume "
                             "(use the same ones, or --overwrite)", path)
        return False
    if resume and (out_dir / FRAMES_DIR).exists() and any((out_dir / FRAMES_DIR).iterdir()):
        raise InputError("frames but no manifest: cannot resume (use --overwrite)", out_dir)
    write_json(path, {"fingerprint": fingerprint, "frames": total, "complete": False})
    return True


def finish_manifest(out_dir: Path, fingerprint: dict, total: int) -> None:
    """Mark the run complete (every frame written)."""
    write_json(out_dir / MANIFEST_NAME, {"fingerprint": fingerprint, "frames": total, "complete": True})
