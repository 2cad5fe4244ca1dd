"""Device resolution, the GPU self-check machinery and the precision policy (CPU only)."""

from __future__ import annotations

import logging

import pytest
import torch

from propainter_wire.errors import InputError
from propainter_wire.runtime import device as device_mod
from propainter_wire.runtime import precision as precision_mod
from propainter_wire.runtime.device import gpu_self_check, primitive_cases, resolve_device, run_case
from propainter_wire.runtime.precision import PrecisionPolicy, resolve_precision

CPU = torch.device("cpu")


# ---------------------------------------------------------------------------
# devices
# ---------------------------------------------------------------------------
def test_cpu_is_cpu():
    assert resolve_device("cpu") == CPU
    assert resolve_device(" CPU ") == CPU


@pytest.mark.parametrize("name", ["gpu", "cuda:x", "mps0", ""])
def test_unknown_device_names(name):
    with pytest.raises(InputError, match="unknown device"):
        resolve_device(name)


def test_auto_without_cuda_says_so_once_and_uses_cpu(monkeypatch, caplog):
    """A machine without a GPU is normal: one informational line, no warning."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    log = logging.getLogger("propainter_wire.test")
    with caplog.at_level(logging.INFO, logger="propainter_wire.test"):
        assert resolve_device("auto", log=log) == CPU
    records = [r for r in caplog.records if r.name == "propainter_wire.test"]
    assert len(records) == 1 and records[0].levelno == logging.INFO
    assert "CPU" in records[0].getMessage() and "no CUDA" in records[0].getMessage()


def test_explicit_cuda_without_cuda_is_an_input_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for name in ("cuda", "cuda:0", "cuda:3"):
        with pytest.raises(InputError, match="CUDA is not available"):
            resolve_device(name)


def test_cuda_index_out_of_range(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(InputError, match=r"only 2 CUDA device\(s\)"):
        resolve_device("cuda:2")


def test_auto_falls_back_when_the_self_check_fails(monkeypatch, caplog):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    seen = []

    def broken(dev):
        seen.append(dev)
        return "matmul: relative error 0.5 > 0.0001"

    monkeypatch.setattr(device_mod, "gpu_self_check", broken)
    with caplog.at_level(logging.WARNING, logger="propainter_wire"):
        assert resolve_device("auto") == CPU
    assert seen == [torch.device("cuda", 0)]
    assert "self-check failed" in caplog.text and "relative error 0.5" in caplog.text

    monkeypatch.setattr(device_mod, "gpu_self_check", lambda dev: None)
    assert resolve_device("auto") == torch.device("cuda", 0)


def test_self_check_passes_on_the_cpu():
    # the same comparison the GPU gets: fp32 ops against a float64 reference
    assert gpu_self_check(CPU) is None
    assert {c[0] for c in primitive_cases()} == {"matmul", "bmm", "conv2d", "grid_sample", "deform_conv2d"}


def test_run_case_reports_wrong_results_and_exceptions():
    def wrong_in_fp32(a, b):
        out = torch.matmul(a, b)
        return out * 1.01 if a.dtype == torch.float32 else out

    a, b = torch.randn(8, 5), torch.randn(5, 3)
    failure = run_case(("matmul", wrong_in_fp32, (a, b)), CPU)
    assert failure is not None and failure.startswith("matmul: relative error")

    def crashes(a, b):
        if a.dtype == torch.float32:
            raise RuntimeError("CUBLAS_STATUS_NOT_SUPPORTED\nmore text")
        return a @ b

    assert run_case(("bmm", crashes, (a, b)), CPU) == "bmm: RuntimeError: CUBLAS_STATUS_NOT_SUPPORTED"


def test_self_check_restores_tf32_flags():
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        gpu_self_check(CPU)
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


# ---------------------------------------------------------------------------
# precision
# ---------------------------------------------------------------------------
def test_cpu_policies(caplog):
    auto = resolve_precision("auto", CPU, cpu_bf16=False)
    assert auto == PrecisionPolicy("fp32") and auto.model_autocast_dtype is None and not auto.allow_tf32
    native = resolve_precision("auto", CPU, cpu_bf16=True)  # bf16 in every stage where the CPU has it
    assert native.name == "auto-bf16" and native.raft_dtype == native.model_autocast_dtype == torch.bfloat16
    assert not native.allow_tf32
    assert resolve_precision("auto", CPU) == resolve_precision(
        "auto", CPU, cpu_bf16=bool(precision_mod.cpu_bf16_native()))
    assert resolve_precision("fp32", "cpu") == PrecisionPolicy("fp32")
    with caplog.at_level(logging.WARNING, logger="propainter_wire"):
        assert resolve_precision("tf32", CPU) == PrecisionPolicy("fp32")
    assert "TF32" in caplog.text
    with pytest.raises(InputError, match="fp16 needs a CUDA device"):
        resolve_precision("fp16", CPU)
    bf16 = resolve_precision("bf16", CPU)
    assert bf16.raft_dtype == torch.bfloat16 and bf16.model_autocast_dtype == torch.bfloat16
    assert not bf16.allow_tf32
    with pytest.raises(InputError, match="unknown precision"):
        resolve_precision("half", CPU)


@pytest.mark.parametrize("native", [True, False])
def test_gpu_policies(monkeypatch, native):
    monkeypatch.setattr(precision_mod, "cuda_bf16_native", lambda dev: native)
    gpu = torch.device("cuda", 0)
    auto = resolve_precision("auto", gpu)  # fp16 in every stage, whatever the GPU
    assert auto.model_autocast_dtype == auto.raft_dtype == torch.float16 and auto.allow_tf32
    assert auto.name == "auto-fp16"
    fp16 = resolve_precision("fp16", gpu)
    assert (auto.raft_dtype, auto.model_autocast_dtype, auto.allow_tf32) == \
        (fp16.raft_dtype, fp16.model_autocast_dtype, fp16.allow_tf32)
    assert resolve_precision("fp32", gpu) == PrecisionPolicy("fp32", allow_tf32=False)
    assert resolve_precision("tf32", gpu).allow_tf32
    assert resolve_precision("tf32", gpu).model_autocast_dtype is None
    fp16 = resolve_precision("fp16", gpu)
    assert fp16.raft_dtype == fp16.model_autocast_dtype == torch.float16
    assert fp16.allow_tf32  # its fp32 matmuls (correlation, deformable convolutions) may use TF32
    if native:
        assert resolve_precision("bf16", gpu).raft_dtype == torch.bfloat16
    else:
        with pytest.raises(InputError, match="no native bf16"):
            resolve_precision("bf16", gpu)


def test_autocast_per_stage():
    a, b = torch.randn(4, 4), torch.randn(4, 4)
    auto_like = PrecisionPolicy("auto-bf16", model_autocast_dtype=torch.bfloat16)
    with auto_like.autocast(CPU, "raft"):
        assert torch.mm(a, b).dtype == torch.float32  # RAFT stays fp32 under auto
    for stage in ("flow_completion", "inpainter"):
        with auto_like.autocast(CPU, stage):
            assert torch.mm(a, b).dtype == torch.bfloat16
    with resolve_precision("bf16", CPU).autocast("cpu", "raft"):
        assert torch.mm(a, b).dtype == torch.bfloat16
    with resolve_precision("fp32", CPU).autocast(CPU, "inpainter"):
        assert torch.mm(a, b).dtype == torch.float32
    with pytest.raises(ValueError, match="unknown stage"):
        auto_like.autocast(CPU, "transformer")


def test_tf32_context_sets_and_restores():
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        with PrecisionPolicy("fp32").tf32_context():
            assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        with pytest.raises(KeyError), PrecisionPolicy("tf32", allow_tf32=True).tf32_context():
            assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
            raise KeyError("boom")
        assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def test_self_check_pass_is_remembered_per_key(tmp_path):
    from propainter_wire.runtime import check_cache

    assert not check_cache.passed_before("a", tmp_path)
    check_cache.record_pass("a", tmp_path)
    check_cache.record_pass("b", tmp_path)
    assert check_cache.passed_before("a", tmp_path) and check_cache.passed_before("b", tmp_path)
    assert not check_cache.passed_before("c", tmp_path)
    for i in range(20):  # only the newest keys are kept
        check_cache.record_pass(f"k{i}", tmp_path, keep=4)
    assert check_cache.passed_before("k19", tmp_path) and not check_cache.passed_before("a", tmp_path)
    (tmp_path / check_cache.CACHE_FILE).write_text("{broken")
    assert not check_cache.passed_before("k19", tmp_path)  # unreadable: the check runs again
    check_cache.record_pass("d", tmp_path)
    assert check_cache.passed_before("d", tmp_path)


def test_auto_device_skips_a_self_check_that_passed_before(monkeypatch, tmp_path):
    from propainter_wire.runtime import check_cache

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(check_cache, "stack_key", lambda device: "stack-1")
    calls = []
    monkeypatch.setattr(device_mod, "gpu_self_check", lambda device: calls.append(device) or None)
    assert resolve_device("auto") == torch.device("cuda", 0)
    assert resolve_device("auto") == torch.device("cuda", 0)
    assert len(calls) == 1  # the second run trusted the remembered pass
    monkeypatch.setattr(check_cache, "stack_key", lambda device: "stack-2")  # a new driver or torch
    monkeypatch.setattr(device_mod, "gpu_self_check", lambda device: calls.append(device) or "matmul: wrong")
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cpu")
    assert len(calls) == 3  # a failure is never remembered


def test_remembered_checks_are_separate_per_name_and_failures_rerun(monkeypatch, tmp_path):
    from propainter_wire.runtime import check_cache

    monkeypatch.setattr(check_cache, "stack_key", lambda device: "stack-1")
    calls = []

    def check(result):
        return lambda: calls.append(result) or result

    assert check_cache.remembered("fused", "cuda", check(None), tmp_path) is None
    assert check_cache.remembered("fused", "cuda", check("wrong"), tmp_path) is None  # remembered: not run
    assert calls == [None]
    assert check_cache.remembered("self-check", "cuda", check("bad"), tmp_path) == "bad"  # another check
    assert check_cache.remembered("self-check", "cuda", check("bad"), tmp_path) == "bad"  # failures rerun
    assert calls == [None, "bad", "bad"]
    monkeypatch.setattr(check_cache, "stack_key", lambda device: 1 / 0)  # unreadable stack: always run
    assert check_cache.remembered("fused", "cuda", check(None), tmp_path) is None
    assert len(calls) == 4


def test_cpu_bf16_native_reads_the_flags():
    assert precision_mod.cpu_bf16_native("processor : 0\nflags : fpu sse2 avx2 fma\n") is False
    assert precision_mod.cpu_bf16_native("flags : avx2 avx512f avx512_bf16\n") is True
    assert precision_mod.cpu_bf16_native("flags : avx2 amx_bf16 amx_tile\n") is True
    assert precision_mod.cpu_bf16_native("Features : fp asimd bf16 i8mm\n") is True  # Arm
    assert precision_mod.cpu_bf16_native("model name : something\n") is None


@pytest.mark.parametrize("native, warned", [(False, True), (True, False), (None, False)])
def test_cpu_bf16_without_native_support_warns(monkeypatch, caplog, native, warned):
    monkeypatch.setattr(precision_mod, "cpu_bf16_native", lambda: native)
    with caplog.at_level(logging.WARNING, logger="propainter_wire.test"):
        policy = resolve_precision("bf16", "cpu", log=logging.getLogger("propainter_wire.test"))
    assert policy.name == "bf16"
    lines = [r.getMessage() for r in caplog.records if r.name == "propainter_wire.test"]
    assert (len(lines) == 1 and "no native bf16" in lines[0]) if warned else not lines
