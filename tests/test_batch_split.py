"""``batch --split``: a shot cut into parts aligned with the engine's chunk schedule, run on two workers and
joined, gives the unsplit run's frames (measured: byte-identical for both engines at 48 and 72 frames)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from batch_clips import frame_bytes, make_shot, write_csv
from propainter_wire.batch.split import schedule
from propainter_wire.cli import main
from propainter_wire.config import InpaintConfig

# the smallest windows (sub-videos of 2, windows of stride 1): parts of tens of frames instead of hundreds
SMALL = {"neighbor-length": "2", "ref-stride": "1", "subvideo-length": "2"}
# the classic engine's bound (8-bit levels) where a part's context is under its reach (docs/batch.md)
CLASSIC_BOUND = 2


def test_schedule_aligns_parts_with_the_engine_chunks():
    config = InpaintConfig()  # subvideo 80, propagation 80, window stride 5: parts start on multiples of 80
    spans = schedule(2000, 4, config)
    assert [s.keep_start for s in spans] == [0, 560, 1120, 1680]
    assert all(s.start % 80 == 0 for s in spans) and spans[-1].keep_stop == 2000
    assert all(s.keep_start - s.start in (0, 240) for s in spans)  # context: 240 frames (reach 220)
    assert schedule(80, 4, config) is None  # no longer than the sub-video: references span the whole clip
    assert schedule(2000, 1, config) is None


@pytest.mark.parametrize("engine", ["classic", pytest.param("propainter", marks=pytest.mark.slow)])
def test_split_equals_unsplit(engine, tmp_path, det_weights_dir):
    make_shot(tmp_path / "s", seed=3, frames=48)
    settings = {"engine": engine, **SMALL}
    if engine == "propainter":
        settings.update({"weights-dir": str(det_weights_dir), "raft-iters": "1"})
    spans = schedule(48, 2, InpaintConfig(neighbor_length=2, ref_stride=1, subvideo_length=2))
    assert [(s.start, s.stop) for s in spans] == [(0, 46), (2, 48)]  # the second part does not start at 0
    for tag, extra in (("whole", []), ("split", ["--split", "2"])):
        jobs = write_csv(tmp_path / f"{tag}.csv", [{"input": "s/frames", "mask": "s/masks", "output": tag,
                                                    **settings}])
        assert main(["batch", str(jobs), "--devices", "cpu,cpu", "--quiet", *extra]) == 0
    assert frame_bytes(tmp_path / "split") == frame_bytes(tmp_path / "whole")
    assert not (tmp_path / "split" / ".parts").exists()


def _levels(out) -> np.ndarray:
    """(T, H, W, 3) int: the frames of an output folder."""
    return np.stack([cv2.imread(str(p)).astype(int) for p in sorted((out / "frames").iterdir())])


@pytest.mark.parametrize("engine", ["classic", pytest.param("propainter", marks=pytest.mark.slow)])
def test_a_long_shot_splits_automatically(engine, tmp_path, det_weights_dir):
    """One 60-frame shot on 2 workers: auto cuts it in 2 (parts of 52 frames, a saving of 13 %), and the
    frames equal the unsplit run's: the propainter engine within the parity tolerance (mean <= 1 level,
    max <= 4 levels of 8 bits inside the mask), the classic engine within its documented bound (2 levels;
    its context here, 22 frames, is under its 24-frame reach). Outside the mask every frame is the input's."""
    make_shot(tmp_path / "s", seed=5, frames=60)
    settings = {"engine": engine, **SMALL}
    if engine == "propainter":
        settings.update({"weights-dir": str(det_weights_dir), "raft-iters": "1"})
    config = InpaintConfig(neighbor_length=2, ref_stride=1, subvideo_length=2)
    assert [(s.start, s.stop) for s in schedule(60, 2, config)] == [(0, 52), (8, 60)]
    for tag, extra in (("whole", ["--split", "1"]), ("auto", [])):
        jobs = write_csv(tmp_path / f"{tag}.csv", [{"input": "s/frames", "mask": "s/masks", "output": tag,
                                                    **settings}])
        assert main(["batch", str(jobs), "--devices", "cpu,cpu", "--quiet", *extra]) == 0
    assert json.loads((tmp_path / "whole.summary.json").read_text())["results"][0]["split"] is None
    assert json.loads((tmp_path / "auto.summary.json").read_text())["results"][0]["split"] == 2
    assert "| 2 ranges |" in (tmp_path / "auto.summary.md").read_text()
    assert json.loads((tmp_path / "auto" / "report.json").read_text())["split"] == [[0, 52, 0, 30], [8, 60, 30, 60]]
    whole, auto = _levels(tmp_path / "whole"), _levels(tmp_path / "auto")
    diff = np.abs(whole - auto)
    if engine == "propainter":
        assert diff.mean() <= 1.0 and diff.max() <= 4, (diff.mean(), diff.max())
    else:
        assert diff.max() <= CLASSIC_BOUND, diff.max()


def test_two_shots_on_two_workers_do_not_split(tmp_path):
    """As many shots as workers: no worker is idle, so auto splits nothing (a part would only add context)."""
    for k in range(2):
        make_shot(tmp_path / f"s{k}", seed=k, frames=60)
    jobs = write_csv(tmp_path / "two.csv", [{"input": f"s{k}/frames", "mask": f"s{k}/masks", "output": f"o{k}",
                                             "engine": "classic", **SMALL} for k in range(2)])
    assert main(["batch", str(jobs), "--devices", "cpu,cpu", "--quiet"]) == 0
    assert [r["split"] for r in json.loads((tmp_path / "two.summary.json").read_text())["results"]] == [None, None]
