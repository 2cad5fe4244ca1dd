"""benchmarks/bench.py: the JSON line reports a --clip's own size and length; --workers in --mode batch."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def bench():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import bench

        yield bench
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))


def test_a_clip_reports_its_own_size(bench, tmp_path, capsys):
    bench.write_clip(tmp_path / "clip", 5, 32, 48, None)
    assert bench.clip_size(tmp_path / "clip") == (5, 32, 48)
    assert bench.main(["--clip", str(tmp_path / "clip"), "--engine", "classic", "--device", "cpu",
                       "--frames", "24", "--width", "432", "--height", "240"]) == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (row["frames"], row["height"], row["width"]) == (5, 32, 48)


def test_an_empty_clip_is_one_line(bench, tmp_path):
    (tmp_path / "clip" / "frames").mkdir(parents=True)
    with pytest.raises(SystemExit, match="no readable frame"):
        bench.clip_size(tmp_path / "clip")


def test_batch_workers_repeat_the_device(bench, tmp_path, capsys):
    bench.write_clip(tmp_path / "clip", 4, 32, 48, None)
    assert bench.main(["--mode", "batch", "--clip", str(tmp_path / "clip"), "--engine", "classic",
                       "--device", "cpu", "--shots", "2", "--workers", "2"]) == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert row["workers"] == 2 and row["batch_devices"] == ["cpu,cpu"] and row["ok"] and row["frames"] == 4
