"""One out-of-memory ladder for every stage (``runtime/memory.py``): the next way is tried after a resource
error only, with one warning naming the stage; other errors and the last way's error propagate."""

from __future__ import annotations

import pytest
import torch

from propainter_wire.runtime.memory import first_line, is_resource_error, retry_on_resource_error


def test_resource_errors_are_recognised():
    assert is_resource_error(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert is_resource_error(RuntimeError("cuDNN error: CUDNN_STATUS_NOT_SUPPORTED"))
    assert is_resource_error(RuntimeError("CUBLAS_STATUS_ALLOC_FAILED when calling cublasCreate"))
    assert not is_resource_error(RuntimeError("shape mismatch"))
    assert first_line(RuntimeError("first\nsecond")) == "first" and first_line(RuntimeError("")) == "RuntimeError"


def test_the_ladder_moves_on_resource_errors_only(caplog):
    tried, dropped = [], []

    def run(size):
        tried.append(size)
        if size > 2:
            raise torch.OutOfMemoryError(f"CUDA out of memory ({size})\nmore")
        return size * 10

    with caplog.at_level("WARNING", logger="propainter_wire"):
        got = retry_on_resource_error(run, [8, 4, 2, 1], stage="stage", describe=lambda n: f"retrying with {n}",
                                      before_retry=dropped.append)
    assert got == 20 and tried == [8, 4, 2] and dropped == [4, 2]
    assert "stage: CUDA out of memory (8); retrying with 4" in caplog.text
    assert "more" not in caplog.text

    with pytest.raises(torch.OutOfMemoryError, match=r"\(3\)"):  # the last way's error
        retry_on_resource_error(run, [3], stage="stage", describe=str)

    def broken(size):
        tried.append(size)
        raise RuntimeError("shape mismatch")

    tried.clear()
    with pytest.raises(RuntimeError, match="shape mismatch"):
        retry_on_resource_error(broken, [8, 4], stage="stage", describe=str)
    assert tried == [8]


def test_the_next_way_is_asked_for_after_the_failure():
    state = {"cache": 0}

    def ways():
        yield "together"
        if state["cache"]:  # decided on the state the failure left
            yield "apart"

    def run(way):
        state["cache"] += 1
        if way == "together":
            raise torch.OutOfMemoryError("out of memory")
        return way

    assert retry_on_resource_error(run, ways(), stage="s", describe=str) == "apart"


def test_release_memory_collects_only_when_asked(monkeypatch):
    """A full collection is for recovering from errors; a stage handing back what it dropped skips it."""
    import gc

    from propainter_wire.runtime import memory

    calls = []
    monkeypatch.setattr(gc, "collect", lambda *a: calls.append(a) or 0)
    memory.release_memory(collect=False)
    assert calls == []
    memory.release_memory()
    assert len(calls) == 1
