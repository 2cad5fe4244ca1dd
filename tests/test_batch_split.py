"""``batch --split``: a shot cut into parts aligned with the engine's chunk schedule, run on two workers and
joined, gives the unsplit run's frames (measured: byte-identical for both engines at 48 and 72 frames)."""

from __future__ import annotations

import pytest

from batch_clips import frame_bytes, make_shot, write_csv
from propainter_wire.batch.split import schedule
from propainter_wire.cli import main
from propainter_wire.config import InpaintConfig

# the smallest windows (sub-videos of 2, windows of stride 1): parts of tens of frames instead of hundreds
SMALL = {"neighbor-length": "2", "ref-stride": "1", "subvideo-length": "2"}


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
