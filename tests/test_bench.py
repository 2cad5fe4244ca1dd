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


def test_import_contention_times_the_import_beside_each_kind_of_thread(tmp_path):
    import subprocess

    import cv2
    import numpy as np

    (tmp_path / "frames").mkdir()
    cv2.imwrite(str(tmp_path / "frames" / "0000.png"), np.zeros((16, 16, 3), np.uint8))
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "import_contention.py"), "--clip", str(tmp_path),
                           "--rounds", "1", "none,0,0.005", "imread,2,0.0005"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    lines = [line.split() for line in done.stdout.strip().splitlines()]
    assert [line[:4] for line in lines] == [["none", "0", "si", "0.005"], ["imread", "2", "si", "0.0005"]]
    assert all(line[4] == "import_torch" and float(line[5]) > 0 for line in lines)
    assert int(lines[0][7]) == 0 and int(lines[1][7]) > 0  # the threads decoded the frame beside the import


def test_suite_ab_alternates_this_tree_and_the_base_tree(tmp_path):
    import os
    import shutil
    import subprocess

    from conftest import DATA, require

    bmx = require(DATA / "bmx-trees")
    base = tmp_path / "base"
    for part in ("src", "benchmarks"):
        shutil.copytree(ROOT / part, base / part, ignore=shutil.ignore_patterns("__pycache__", "results", "quality"))
    env = dict(os.environ, DEVICE="cpu", BASE_TREE=str(base), AB_SIZE="64 48 4", AB_ROUNDS="1", AB_PRECISION="fp32",
               OUT=str(tmp_path / "out"), PY=sys.executable, BMX=str(bmx), CLIPS=str(tmp_path / "clips"))
    done = subprocess.run(["bash", "benchmarks/suite.sh", "ab"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert [r["name"] for r in rows] == ["ab_warmup_this", "ab_warmup_base", "ab_this_64x48x4_1", "ab_base_64x48x4_1"]
    assert all(r["exit_code"] == 0 and r["mode"] == "process" and r["precision"] == "fp32" for r in rows)
