"""The CUDA context made on a thread while torch imports (runtime.early_cuda)."""

from __future__ import annotations

import ctypes

import pytest

from propainter_wire.runtime import early_cuda
from propainter_wire.runtime.early_import import join_early_imports


class FakeDriver:
    """Stands in for libcuda: records the calls and answers with the given result codes."""

    def __init__(self, init: int = 0, get: int = 0, retain: int = 0) -> None:
        self.codes = {"cuInit": init, "cuDeviceGet": get, "cuDevicePrimaryCtxRetain": retain}
        self.calls: list[tuple[str, tuple]] = []

    def __call__(self, name: str) -> FakeDriver:  # the loader: CDLL(name)
        self.calls.append(("open", (name,)))
        return self

    def __getattr__(self, name: str):
        if name not in self.codes:
            raise AttributeError(name)

        def call(*args):
            self.calls.append((name, args))
            if name == "cuDeviceGet":
                ctypes.cast(args[0], ctypes.POINTER(ctypes.c_int))[0] = 7  # the handle
            return self.codes[name]

        return call


@pytest.mark.parametrize("device, index", [("auto", 0), ("cuda", 0), ("CUDA:2", 2), ("cpu", None), ("tpu", None),
                                           ("cuda:x", None)])
def test_device_index(device, index):
    assert early_cuda.device_index(device) == index


def test_the_primary_context_of_the_named_device_is_retained():
    driver = FakeDriver()
    assert early_cuda.retain_primary_context(3, driver)
    names = [name for name, _ in driver.calls]
    assert names == ["open", "cuInit", "cuDeviceGet", "cuDevicePrimaryCtxRetain"]
    assert driver.calls[0][1] == ("libcuda.so.1",)
    assert driver.calls[2][1][1].value == 3  # the ordinal asked for
    assert driver.calls[3][1][1].value == 7  # the handle cuDeviceGet gave


@pytest.mark.parametrize("codes, calls", [({"init": 100}, 2), ({"get": 101}, 3), ({"retain": 2}, 4)])
def test_a_failing_driver_call_stops_quietly(codes, calls):
    driver = FakeDriver(**codes)
    assert not early_cuda.retain_primary_context(0, driver)
    assert len(driver.calls) == calls


def test_no_driver_library_is_no_error():
    def missing(name):
        raise OSError(f"{name}: cannot open shared object file")

    assert not early_cuda.retain_primary_context(0, missing)
    thread = early_cuda.start_context("cuda:1", missing)
    assert thread is not None and thread.name.startswith("early-import-")
    join_early_imports()  # the command's teardown waits for it like an import
    assert not thread.is_alive()


def test_the_cpu_starts_nothing():
    driver = FakeDriver()
    assert early_cuda.start_context("cpu", driver) is None
    assert driver.calls == []
