"""``batch --ray`` on a local Ray instance (CPU): both engines, frames equal to a local batch, a killed actor's
shot retried on another, and a path a node cannot reach named before any shot starts."""

from __future__ import annotations

import functools
import json

import pytest

from batch_clips import PROPAINTER, frame_bytes, make_shot, write_csv
from propainter_wire.batch.faults import exit_once
from propainter_wire.batch.jobs import load_jobs
from propainter_wire.batch.worker import DONE, FAILED
from propainter_wire.cli import main
from propainter_wire.errors import InputError
from propainter_wire.tuning import Tuning

ray = pytest.importorskip("ray", reason="Ray is an optional extra (pip install 'propainter-wire[ray]')")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, namespace="propainter-wire-tests")
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def jobs(tmp_path_factory, det_weights_dir):
    root = tmp_path_factory.mktemp("ray")
    rows = []
    for i, settings in enumerate([{"engine": "classic"}, {**PROPAINTER, "weights-dir": str(det_weights_dir)},
                                  {"engine": "classic"}]):
        make_shot(root / f"s{i}", seed=10 + i)
        rows.append({"name": f"s{i}", "input": f"s{i}/frames", "mask": f"s{i}/masks", "output": f"OUT/s{i}",
                     **settings})
    rows.append({"name": "broken", "input": "missing", "mask": "s0/masks", "output": "OUT/broken"})
    local = write_csv(root / "local.csv", [{**r, "output": r["output"].replace("OUT", "local")} for r in rows])
    assert main(["batch", str(local), "--devices", "cpu", "--quiet"]) == 1
    return root, rows


def test_ray_equals_local_and_a_killed_actor_is_retried(local_ray, jobs, tmp_path):
    from propainter_wire.batch.ray_runner import run_ray

    root, rows = jobs
    shots = load_jobs(write_csv(root / "ray.csv", [{**r, "output": r["output"].replace("OUT", "ray")}
                                                   for r in rows]))
    marker = tmp_path / "die"
    marker.touch()
    outcome = run_ray(shots, "local", Tuning(), devices="cpu,cpu", before_shot=functools.partial(exit_once, marker))
    assert not marker.exists()  # one actor died
    by_name = {r.name: r for r in outcome.results}
    assert by_name["broken"].status == FAILED and "missing" in by_name["broken"].error
    assert max(r.attempts for r in outcome.results) == 2
    for name in ("s0", "s1", "s2"):
        assert by_name[name].status == DONE
        assert frame_bytes(root / "ray" / name) == frame_bytes(root / "local" / name), name


def test_the_cli_runs_on_ray_and_writes_the_summary(local_ray, jobs):
    root, rows = jobs
    csv = write_csv(root / "cli.csv", [{**r, "output": r["output"].replace("OUT", "cli")} for r in rows[:1]])
    assert main(["batch", str(csv), "--ray", "--devices", "cpu", "--quiet"]) == 0
    summary = json.loads((root / "cli.summary.json").read_text())
    assert summary["runner"] == "ray" and summary["results"][0]["status"] == DONE
    assert frame_bytes(root / "cli" / "s0") == frame_bytes(root / "local" / "s0")


def test_an_unreachable_path_is_named(local_ray, jobs, tmp_path, monkeypatch):
    from propainter_wire.batch import ray_runner

    root, rows = jobs
    shots = load_jobs(write_csv(root / "unreach.csv", [{**rows[0], "output": "unreach/s0"}]))
    monkeypatch.setattr(ray_runner, "path_problems", lambda shots: [f"node n1 cannot read {shots[0].input}"])
    with pytest.raises(InputError, match="node n1 cannot read .*shared storage"):
        ray_runner.run_ray(shots, "local", Tuning(), devices="cpu")
    assert not (root / "unreach").exists()
