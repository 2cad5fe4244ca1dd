"""``report.json``'s ``wall_seconds``: the parts of a run add up to the process's time."""

from __future__ import annotations

import json
import time

import pytest

from propainter_wire.cli import main
from propainter_wire.pipeline.stages import Stages
from propainter_wire.runner.report import wall_seconds
from test_resume import FAST, make_clip


def test_stages_remember_when_the_first_top_level_stage_began():
    stages = Stages()
    before = time.perf_counter()
    with stages("read"):
        with stages("inner"):
            pass
    first = stages.first_start
    with stages("flow"):
        pass
    assert first is not None and before <= first <= time.perf_counter()
    assert stages.first_start == first  # later stages do not move it
    assert set(stages.top_level) == {"read", "flow"}


def test_wall_seconds_splits_setup_stages_and_the_time_between():
    stages = Stages()
    stages.first_start = 10.5  # the run started at 10.0
    stages.top_level.update(read=1.0, flow=2.0)
    wall = wall_seconds(stages, start=10.0, total=4.0, startup=0.25, loader={"torch": 1.5})
    assert wall["setup"] == pytest.approx(0.5)
    assert wall["between"] == pytest.approx(4.0 - 0.5 - 3.0)
    parts = wall["startup"] + wall["setup"] + wall["read"] + wall["flow"] + wall["between"]
    assert parts == pytest.approx(wall["process"]) and wall["process"] == pytest.approx(4.25)
    assert wall["loader"] == {"torch": 1.5}


def test_wall_seconds_of_a_run_that_reached_no_stage_is_all_setup():
    wall = wall_seconds(Stages(), start=0.0, total=0.75, startup=None, loader={})
    assert wall["setup"] == pytest.approx(0.75) and wall["between"] == 0.0 and wall["process"] == pytest.approx(0.75)


def test_a_runs_report_accounts_for_all_of_its_time(tmp_path, in_order_io):
    frames, masks = make_clip(tmp_path)
    out = tmp_path / "out"
    assert main(["inpaint", "-i", str(frames), "-m", str(masks), "-o", str(out), *FAST]) == 0
    report = json.loads((out / "report.json").read_text())
    wall, seconds = report["wall_seconds"], report["seconds"]
    stage_keys = [k for k in wall if k not in {"startup", "setup", "between", "process", "loader"}]
    assert {"read", "prepare"} <= set(stage_keys)
    assert wall["startup"] == 0.0  # main(argv) in a process not started for the command
    assert wall["setup"] > 0.0
    total = wall["setup"] + sum(wall[k] for k in stage_keys) + wall["between"]
    assert total == pytest.approx(seconds["total"], abs=1e-3)
    assert wall["process"] == pytest.approx(seconds["total"], abs=1e-3)
