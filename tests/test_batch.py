"""``propainter-wire batch`` on this machine: mixed engines in warm workers, frames byte-identical to
separate ``inpaint`` runs, a broken shot recorded while the others finish, a dead worker's shot
retried, and an interrupted batch finished by ``--resume`` (CPU, tiny shots)."""

from __future__ import annotations

import functools
import json
import shutil

import pytest

from batch_clips import PROPAINTER, frame_bytes, make_shot, write_csv
from propainter_wire.batch.faults import exit_once
from propainter_wire.batch.jobs import load_jobs
from propainter_wire.batch.local import run_local
from propainter_wire.batch.worker import DONE, FAILED, INTERRUPTED, NOT_RUN, SKIPPED
from propainter_wire.cli import main
from propainter_wire.tuning import Tuning

FLAGS = {"engine": "--engine", "neighbor-length": "--neighbor-length", "ref-stride": "--ref-stride",
         "subvideo-length": "--subvideo-length", "raft-iters": "--raft-iters", "weights-dir": "--weights-dir",
         "precision": "--precision"}


def inpaint_alone(fdir, mdir, out, settings: dict) -> dict[str, bytes]:
    """The frames of a separate ``inpaint`` run of one shot."""
    args = [a for k, v in settings.items() if k in FLAGS for a in (FLAGS[k], str(v))]
    assert main(["inpaint", "-i", str(fdir), "-m", str(mdir), "-o", str(out), "--device", "cpu", "--quiet",
                 *args]) == 0
    return frame_bytes(out)


@pytest.fixture(scope="module")
def shots(tmp_path_factory, det_weights_dir):
    """Three shots (classic, propainter, classic) and a jobs file with them and a broken one."""
    root = tmp_path_factory.mktemp("batch")
    rows, alone = [], {}
    for i, settings in enumerate([{"engine": "classic"}, {**PROPAINTER, "weights-dir": str(det_weights_dir)},
                                  {"engine": "classic"}]):
        fdir, mdir = make_shot(root / f"s{i}", seed=i)
        rows.append({"name": f"s{i}", "input": f"s{i}/frames", "mask": f"s{i}/masks", "output": f"out/s{i}",
                     **settings})
        alone[f"s{i}"] = inpaint_alone(fdir, mdir, root / "alone" / f"s{i}", settings)
    broken = {"name": "broken", "input": "missing/frames", "mask": "s0/masks", "output": "out/broken",
              "engine": "classic"}
    jobs = write_csv(root / "shots.csv", [rows[0], broken, *rows[1:]])
    return root, jobs, alone


def test_mixed_engines_byte_identical_and_a_broken_shot_recorded(shots, capsys):
    root, jobs, alone = shots
    code = main(["batch", str(jobs), "--devices", "cpu", "--quiet"])
    assert code == 1  # one shot failed: not 0
    summary = json.loads((root / "shots.summary.json").read_text())
    by_name = {r["name"]: r for r in summary["results"]}
    assert [r["name"] for r in summary["results"]] == ["s0", "broken", "s1", "s2"]  # jobs-file order
    assert by_name["broken"]["status"] == FAILED and "missing" in by_name["broken"]["error"]
    assert "\n" not in by_name["broken"]["error"]
    for name in ("s0", "s1", "s2"):
        row = by_name[name]
        assert row["status"] == DONE and row["frames"] == 6 and row["width"] == 64
        assert frame_bytes(root / "out" / name) == alone[name], name
        assert json.loads((root / "out" / name / "report.json").read_text())["frames"] == 6
    assert by_name["s1"]["engine"] == "propainter" and by_name["s0"]["engine"] == "classic"
    assert summary["failed"] == ["broken"] and not summary["ok"]
    md = (root / "shots.summary.md").read_text()
    assert "| broken |" in md and "failed" in md
    assert "1 failed" in capsys.readouterr().out


def test_resume_skips_finished_and_finishes_interrupted(shots, tmp_path):
    root, jobs, alone = shots
    work = tmp_path / "w"
    shutil.copytree(root, work, ignore=shutil.ignore_patterns("alone", "out", "*.summary.*"))
    jobs = work / "shots.csv"
    assert main(["batch", str(jobs), "--devices", "cpu", "--quiet"]) == 1
    # s1 as an interrupted run leaves it: half its frames, an incomplete manifest, no report
    out = work / "out" / "s1"
    manifest = json.loads((out / "manifest.json").read_text())
    (out / "manifest.json").write_text(json.dumps({**manifest, "complete": False}))
    (out / "report.json").unlink()
    for p in sorted((out / "frames").iterdir())[3:]:
        p.unlink()
    before = (work / "out" / "s0" / "report.json").read_bytes()
    assert main(["batch", str(jobs), "--devices", "cpu", "--quiet", "--resume"]) == 1
    results = {r["name"]: r for r in json.loads((work / "shots.summary.json").read_text())["results"]}
    assert results["s0"]["status"] == SKIPPED and results["s2"]["status"] == SKIPPED
    assert results["s1"]["status"] == DONE and results["broken"]["status"] == FAILED
    assert (work / "out" / "s0" / "report.json").read_bytes() == before  # untouched
    assert frame_bytes(out) == alone["s1"]


class _StopAtStart:
    """Progress that raises KeyboardInterrupt (Ctrl-C) when the ``at``-th shot is handed out."""

    def __init__(self, at: int) -> None:
        self.at, self.started = at, 0

    def start(self, shot, worker):
        self.started += 1
        if self.started == self.at:
            raise KeyboardInterrupt

    def frames(self, row, n):
        pass

    def finish(self, result):
        pass


def test_interrupted_batch_then_resume_equals_separate_runs(shots, tmp_path):
    root, _, alone = shots
    work = tmp_path / "w"
    shutil.copytree(root, work, ignore=shutil.ignore_patterns("alone", "out", "*.summary.*"))
    rows = [{"input": f"s{i}/frames", "mask": f"s{i}/masks", "output": f"out/s{i}", "engine": "classic"}
            for i in (0, 2)]
    rows += [{"input": "s0/frames", "mask": "s0/masks", "output": f"out/copy{i}", "engine": "classic"}
             for i in range(3)]
    jobs = write_csv(work / "j.csv", rows)
    outcome = run_local(load_jobs(jobs), ["cpu"], Tuning(), progress=_StopAtStart(2))
    assert outcome.interrupted
    statuses = [r.status for r in outcome.results]
    assert statuses[0] == DONE and NOT_RUN in statuses
    assert set(statuses) <= {DONE, INTERRUPTED, NOT_RUN}
    assert main(["batch", str(jobs), "--devices", "cpu", "--quiet", "--resume"]) == 0
    results = json.loads((work / "j.summary.json").read_text())["results"]
    assert results[0]["status"] == SKIPPED and all(r["status"] in (DONE, SKIPPED) for r in results)
    assert frame_bytes(work / "out" / "s0") == alone["s0"] and frame_bytes(work / "out" / "s2") == alone["s2"]
    for i in range(3):
        assert frame_bytes(work / "out" / f"copy{i}") == alone["s0"]


def test_a_dead_worker_is_restarted_and_its_shot_retried(shots, tmp_path):
    root, _, alone = shots
    work = tmp_path / "w"
    shutil.copytree(root, work, ignore=shutil.ignore_patterns("alone", "out", "*.summary.*"))
    jobs = write_csv(work / "j.csv", [{"input": f"s{i}/frames", "mask": f"s{i}/masks", "output": f"out/s{i}",
                                       "engine": "classic"} for i in (0, 2)])
    marker = tmp_path / "die"
    marker.touch()
    outcome = run_local(load_jobs(jobs), ["cpu", "cpu"], Tuning(), before_shot=functools.partial(exit_once, marker))
    assert not marker.exists()  # one worker died
    assert [r.status for r in outcome.results] == [DONE, DONE]
    assert sorted(r.attempts for r in outcome.results) == [1, 2]
    assert frame_bytes(work / "out" / "s0") == alone["s0"] and frame_bytes(work / "out" / "s2") == alone["s2"]
