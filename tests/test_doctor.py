"""``propainter-wire doctor`` on a CPU machine: sections, JSON, skips, failures, advice."""

from __future__ import annotations

import io
import json
import sys

import pytest
import torch

from propainter_wire import doctor
from propainter_wire.doctor import SelfTest, collect_report, doctor_command, environment, selftests
from propainter_wire.doctor import report as doctor_report
from propainter_wire.runtime.precision import cpu_bf16_native

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="these checks describe a machine without CUDA")

SECTIONS = {"versions", "cuda", "gpus", "selected_device", "precision_auto", "tests", "advice", "usable", "exit_code"}


@pytest.fixture(scope="module")
def report():
    """One full report (every self-test, the tiny end-to-end run included)."""
    return collect_report("auto")


def test_report_has_every_section(report):
    assert SECTIONS <= set(report)
    for lib in ("python", "torch", "torchvision", "numpy", "opencv", "pyav"):
        assert report["versions"][lib] and "not available" not in report["versions"][lib]
    assert {"torch_cuda", "cudnn", "cublas_bundled", "cublas_loaded", "driver", "driver_cuda"} <= set(report["cuda"])
    assert report["gpus"] == [] and report["selected_device"] == "cpu"
    assert report["precision_auto"] == ("auto-bf16" if cpu_bf16_native() else "fp32")


def test_cpu_path_is_usable(report):
    by_name = {t["name"]: t for t in report["tests"]}
    for name in ("gemm fp32", "bmm fp32", "sdpa math", "conv2d", "grid_sample", "deform_conv2d",
                 "networks end-to-end"):
        assert by_name[name]["status"] == "pass", by_name[name]
    assert report["exit_code"] == 0 and report["usable"]
    assert not any(t["status"] == "fail" for t in report["tests"])


def test_gpu_tests_are_skipped_with_a_reason(report):
    gpu_only = [t for t in report["tests"] if any(k in t["name"] for k in ("tf32", "fp16", "720p", "cudnn fused"))]
    assert len(gpu_only) == 10  # gemm/bmm tf32 + fp16, 4 all-pairs, 2 fused convolutions (fp16, bf16)
    for t in gpu_only:
        assert t["status"] == "skipped" and t["detail"] == "skipped: no CUDA device"
    assert any("CUDA" in line or "CPU-only" in line for line in report["advice"])


def test_json_mode_prints_json_only(report, monkeypatch):
    monkeypatch.setattr(doctor_report, "collect_report", lambda device_name="auto": report)
    out = io.StringIO()
    assert doctor_command(True, stream=out) == 0
    assert json.loads(out.getvalue()) == json.loads(json.dumps(report))


@pytest.mark.parametrize("with_rich", [True, False])
def test_text_mode_is_a_table(report, monkeypatch, with_rich):
    if not with_rich:
        monkeypatch.setitem(sys.modules, "rich", None)
        monkeypatch.setitem(sys.modules, "rich.console", None)
        monkeypatch.setitem(sys.modules, "rich.table", None)
    monkeypatch.setattr(doctor_report, "collect_report", lambda device_name="auto": report)
    out = io.StringIO()
    assert doctor_command(False, stream=out) == 0
    text = out.getvalue()
    for needle in ("Versions", "CUDA", "Self-tests on cpu", "networks end-to-end", "PASS", "SKIPPED",
                   "skipped: no CUDA device", "OK: the cpu path is usable"):
        assert needle in text, needle
    if not with_rich:
        assert "│" not in text and text.startswith("== Versions")


def test_forced_failure_is_reported_with_its_error(monkeypatch):
    def broken(device):
        raise RuntimeError("CUBLAS_STATUS_EXECUTION_FAILED when calling cublasSgemm\nsecond line")

    monkeypatch.setattr(selftests, "self_tests", lambda: [SelfTest("gemm fp32", broken),
                                                       SelfTest("gemm fp16", broken, gpu_only=True)])
    out = io.StringIO()
    assert doctor_command(True, device="cpu", stream=out) == 1
    rep = json.loads(out.getvalue())
    first, second = rep["tests"]
    assert first["status"] == "fail"
    assert first["detail"] == "RuntimeError: CUBLAS_STATUS_EXECUTION_FAILED when calling cublasSgemm"
    assert second["status"] == "skipped"
    assert rep["exit_code"] == 1 and rep["usable"] is False
    assert any("gemm fp32" in line for line in rep["advice"])

    out = io.StringIO()
    assert doctor_command(False, device="cpu", stream=out) == 1
    assert "FAIL" in out.getvalue() and "CUBLAS_STATUS_EXECUTION_FAILED" in out.getvalue()
    assert "PROBLEM" in out.getvalue()


def test_wrong_numbers_fail_the_gemm_test(monkeypatch):
    """A GEMM that is wrong in fp32 only (like a mismatched cuBLAS) fails with the error size."""
    real_bmm = torch.bmm

    def bad_bmm(a, b):
        out = real_bmm(a, b)
        return out * 1.5 if a.dtype == torch.float32 else out

    tests = [t for t in doctor.self_tests() if t.name in ("bmm fp32", "gemm fp32")]
    monkeypatch.setattr(torch, "bmm", bad_bmm)
    results = {r["name"]: r for r in doctor.run_self_tests(torch.device("cpu"), False, tests)}
    assert results["gemm fp32"]["status"] == "pass"
    assert results["bmm fp32"]["status"] == "fail" and "relative error" in results["bmm fp32"]["detail"]


def test_advice_for_broken_installs(monkeypatch):
    monkeypatch.setattr(selftests, "self_tests", lambda: [])
    monkeypatch.setattr(torch.version, "cuda", "12.4")
    monkeypatch.setattr(environment, "driver", lambda: {"driver": "470.82", "driver_cuda": "11.4"})
    monkeypatch.setattr(environment, "loaded_libs",
                        lambda pattern: ["/usr/local/cuda-11.4/lib64/libcublas.so.11"] if "cublas." in pattern else [])
    rep = collect_report("cpu")
    advice = " | ".join(rep["advice"])
    assert "driver supports CUDA up to 11.4" in advice
    assert "/usr/local/cuda-11.4/lib64/libcublas.so.11" in advice and "bundled" in advice
    assert rep["exit_code"] == 0  # nothing failed on the selected (CPU) path

    monkeypatch.setattr(torch.version, "cuda", None)
    assert any("CPU-only" in line for line in collect_report("cpu")["advice"])


def test_exit_code_semantics():
    def rep(*statuses):
        return {"tests": [{"name": str(i), "status": s} for i, s in enumerate(statuses)]}

    assert doctor.exit_code(rep("pass", "skipped")) == 0
    assert doctor.exit_code(rep("pass", "fail", "skipped")) == 1
    assert doctor.exit_code(rep()) == 0


@pytest.mark.parametrize("native", [True, False])
def test_cpu_bf16_advice_follows_the_cpu(monkeypatch, native):
    monkeypatch.setattr(environment, "cpu_bf16_native", lambda: native)
    advice = " | ".join(collect_report("cpu")["advice"])
    assert ("--precision bf16" in advice) == native
