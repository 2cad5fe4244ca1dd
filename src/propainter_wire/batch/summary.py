"""The batch summary: ``JOBS_STEM.summary.json`` and ``.md``, one row per shot.

A shot split over several workers (``--split``) is one row; its ``split`` field (JSON) and column
(Markdown) give the number of time ranges it ran as.
"""

from __future__ import annotations

import time
from pathlib import Path

from ..io.output import _atomic_write_bytes, write_json
from .worker import FAILED, FINISHED, ShotResult

COLUMNS = ("shot", "frames", "size", "split", "seconds", "frames/s", "peak memory", "status", "error")


def summary_paths(jobs: Path, summary: Path | None) -> tuple[Path, Path]:
    """The JSON and Markdown paths: ``--summary PATH`` (either suffix), else next to the jobs file."""
    if summary is not None:
        base = summary.with_suffix("") if summary.suffix.lower() in (".json", ".md") else summary
        return base.with_suffix(".json"), base.with_suffix(".md")
    return jobs.parent / f"{jobs.stem}.summary.json", jobs.parent / f"{jobs.stem}.summary.md"


def totals(results: list[ShotResult], seconds: float) -> dict:
    """Counts by status, frames computed and shots per hour over the batch's wall time (``seconds``)."""
    by_status: dict[str, int] = {}
    for r in results:
        by_status[r.status] = by_status.get(r.status, 0) + 1
    done = [r for r in results if r.status == "done"]
    return {"shots": len(results), "status": by_status, "frames": sum(r.frames or 0 for r in done),
            "seconds": round(seconds, 3), "shots_per_hour": round(len(done) * 3600 / seconds, 2) if seconds else None,
            "ok": all(r.status in FINISHED for r in results)}


def _gib(value: int | None) -> str:
    return "" if value is None else f"{value / 2**30:.2f} GiB"


def markdown(results: list[ShotResult], total: dict, jobs: Path) -> str:
    lines = [f"# Batch summary: {jobs.name}", "",
             f"{total['shots']} shots: " + ", ".join(f"{n} {s}" for s, n in sorted(total["status"].items()))
             + f"; {total['frames']} frames in {total['seconds']:.1f} s", "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in results:
        size = f"{r.width}x{r.height}" if r.width else ""
        memory = " / ".join(m for m in (_gib(r.peak_host_bytes), _gib(r.peak_gpu_bytes) + " GPU"
                                        if r.peak_gpu_bytes else "") if m)
        error = (r.error or "").replace("|", "\\|")
        split = f"{r.split} ranges" if r.split else ""
        cells = (r.name, r.frames if r.frames is not None else "", size, split,
                 f"{r.seconds:.2f}" if r.seconds is not None else "",
                 f"{r.frames_per_second:.2f}" if r.frames_per_second is not None else "", memory, r.status, error)
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def write_summary(results: list[ShotResult], jobs: Path, paths: tuple[Path, Path], seconds: float,
                  interrupted: bool = False, runner: str = "local") -> dict:
    """Write both files atomically; returns the JSON's content."""
    total = totals(results, seconds)
    data = {"jobs": str(jobs), "runner": runner, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "interrupted": interrupted, **total, "failed": [r.name for r in results if r.status == FAILED],
            "results": [r.to_dict() for r in results]}
    json_path, md_path = paths
    write_json(json_path, data)
    _atomic_write_bytes(md_path, markdown(results, total, jobs).encode("utf-8"))
    return data
