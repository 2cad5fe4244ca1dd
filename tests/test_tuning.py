"""``Tuning.from_env``: every switch parsed, every bad value refused naming its variable, and the
CLI's answer to a bad value (one line on stderr, exit code 2, nothing written)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from propainter_wire.tuning import CHANNELS_LAST_PARTS, Tuning, TuningError, default_io_threads

P = "PROPAINTER_WIRE_"


def test_empty_environment_gives_the_defaults():
    assert Tuning.from_env({}) == Tuning()
    assert Tuning.from_env({P + "IO_THREADS": "  ", P + "WINDOW_BATCH": ""}) == Tuning()  # blank = unset


@pytest.mark.parametrize(("name", "value", "field", "expected"), [
    ("WEIGHTS", "/tmp/ckpt", "weights_dir", Path("/tmp/ckpt")),
    ("IO_THREADS", "3", "io_threads", 3),
    ("CUDA_GRAPHS", "0", "cuda_graphs", False),
    ("RAFT_BUDGET_GIB", "1.5", "raft_budget_bytes", int(1.5 * 2**30)),
    ("TRANSFORMER_BUDGET_GIB", "2", "transformer_budget_bytes", 2 * 2**30),
    ("RESIDENT_GIB", "8", "resident_bytes", 8 * 2**30),
    ("RAFT_HALF_PYRAMID", "1", "raft_half_pyramid", True),
    ("CHANNELS_LAST", "1", "channels_last", ("all",)),
    ("CHANNELS_LAST", "0", "channels_last", ()),
    ("CHANNELS_LAST", "raft_encoders, transformer", "channels_last", ("raft_encoders", "transformer")),
    ("WINDOW_BATCH", "4", "window_batch", 4),
    ("BATCH_DIRECTIONS", "0", "batch_directions", False),
    ("FUSED_EPILOGUES", "update", "fused_epilogues", "update"),
    ("PREFETCH_GATHER", "torch", "numpy_gather", False),
    ("CUDNN_BENCHMARK", "flow,transformer", "cudnn_benchmark", frozenset({"flow", "transformer"})),
    ("PRELOAD", "1", "preload", True),
    ("BYTECODE_CACHE", "0", "bytecode_cache", False),
    ("FAST_EXIT", "0", "fast_exit", False),
    ("EARLY_CUDA", "0", "early_cuda", False),
])
def test_each_variable_is_parsed(name, value, field, expected):
    tuning = Tuning.from_env({P + name: value})
    assert getattr(tuning, field) == expected
    assert tuning.replace(**{field: getattr(Tuning(), field)}) == Tuning()  # nothing else changed


def test_every_variable_has_a_case():
    assert {v.removeprefix(P) for v in Tuning.variables()} == {
        "WEIGHTS", "IO_THREADS", "CUDA_GRAPHS", "RAFT_BUDGET_GIB", "TRANSFORMER_BUDGET_GIB", "RAFT_HALF_PYRAMID",
        "RESIDENT_GIB", "CHANNELS_LAST", "WINDOW_BATCH", "BATCH_DIRECTIONS", "FUSED_EPILOGUES", "PREFETCH_GATHER",
        "CUDNN_BENCHMARK", "PRELOAD", "BYTECODE_CACHE", "FAST_EXIT", "EARLY_CUDA"}
    assert "raft_encoders" in CHANNELS_LAST_PARTS


@pytest.mark.parametrize(("name", "value"), [
    ("IO_THREADS", "0"), ("IO_THREADS", "two"), ("IO_THREADS", "-1"),
    ("CUDA_GRAPHS", "yes"),
    ("RAFT_BUDGET_GIB", "0"), ("RAFT_BUDGET_GIB", "lots"),
    ("TRANSFORMER_BUDGET_GIB", "-2"),
    ("RESIDENT_GIB", "0"),
    ("RAFT_HALF_PYRAMID", "2"),
    ("CHANNELS_LAST", "raft_encoders,nope"),
    ("WINDOW_BATCH", "0"),
    ("BATCH_DIRECTIONS", "true"),
    ("FUSED_EPILOGUES", "2"),
    ("PREFETCH_GATHER", "gpu"),
    ("CUDNN_BENCHMARK", "flow,everything"),
    ("PRELOAD", "on"),
    ("BYTECODE_CACHE", "yes"),
])
def test_each_bad_value_is_refused_naming_the_variable(name, value):
    with pytest.raises(TuningError, match=P + name) as info:
        Tuning.from_env({P + name: value})
    assert isinstance(info.value, ValueError)


def test_threads_come_from_the_switch_or_the_cores():
    assert Tuning(io_threads=3).threads() == 3
    assert 1 <= Tuning().threads() <= 16


def test_default_io_threads_leave_two_cores_on_larger_machines():
    assert [default_io_threads(c) for c in (1, 2, 4, 7, 8, 16, 18, 64)] == [1, 2, 4, 7, 6, 14, 16, 16]
    with pytest.raises(TuningError):
        Tuning(io_threads=0)


def _clip(root: Path) -> tuple[Path, Path]:
    frames, masks = root / "frames", root / "masks"
    frames.mkdir()
    masks.mkdir()
    for t in range(3):
        cv2.imwrite(str(frames / f"{t:03d}.png"), np.full((24, 32, 3), 30 * t, np.uint8))
        mask = np.zeros((24, 32), np.uint8)
        mask[8:14, 10:20] = 255
        cv2.imwrite(str(masks / f"{t:03d}.png"), mask)
    return frames, masks


@pytest.mark.parametrize(("name", "value"), [("IO_THREADS", "many"), ("WINDOW_BATCH", "0")])
def test_cli_refuses_a_bad_switch_in_one_line_with_exit_code_2(tmp_path, capsys, monkeypatch, name, value):
    from propainter_wire.cli import main

    frames, masks = _clip(tmp_path)
    monkeypatch.setenv(P + name, value)
    capsys.readouterr()
    code = main(["inpaint", "-i", str(frames), "-m", str(masks), "-o", str(tmp_path / "out"),
                 "--engine", "classic", "--device", "cpu", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and P + name in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_python_api_raises_the_tuning_error(tmp_path, monkeypatch):
    import propainter_wire as pw

    monkeypatch.setenv(P + "IO_THREADS", "0")
    with pytest.raises(TuningError, match=P + "IO_THREADS"):
        pw.inpaint_arrays(np.zeros((2, 8, 8, 3), np.uint8), np.zeros((8, 8), bool), engine="classic")
