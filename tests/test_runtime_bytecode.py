"""The bytecode cache: when it turns on, and that a started command compiles into it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from propainter_wire.runtime import bytecode

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.mark.parametrize(("setting", "prefix_set", "missing", "expected"), [
    (None, False, True, True),    # auto: the environment has no bytecode
    (None, False, False, False),  # auto: it has its own
    (True, False, False, True),   # forced on
    (False, False, True, False),  # forced off
    (True, True, True, False),    # the interpreter's own prefix always wins
    (None, True, True, False),
])
def test_wanted(setting, prefix_set, missing, expected):
    assert bytecode.wanted(setting, prefix_set, missing) is expected


def test_missing_bytecode_of_a_package(tmp_path, monkeypatch):
    pkg = tmp_path / "pwtestpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert bytecode.missing_bytecode("pwtestpkg")
    import importlib.util
    import py_compile

    py_compile.compile(str(pkg / "__init__.py"), cfile=importlib.util.cache_from_source(str(pkg / "__init__.py")))
    assert not bytecode.missing_bytecode("pwtestpkg")
    assert not bytecode.missing_bytecode("no_such_package_here")


def _run(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k not in ("PYTHONPYCACHEPREFIX", "PROPAINTER_WIRE_BYTECODE_CACHE")}
    full.update(PYTHONPATH=str(SRC), XDG_CACHE_HOME=str(tmp_path), PYTHONDONTWRITEBYTECODE="1", **env)
    return subprocess.run([sys.executable, "-m", "propainter_wire", "inpaint", "--help"], env=full,
                          capture_output=True, text=True, timeout=120)


def test_command_compiles_into_the_user_cache(tmp_path):
    done = _run(tmp_path, PROPAINTER_WIRE_BYTECODE_CACHE="1")
    assert done.returncode == 0, done.stderr
    compiled = list((tmp_path / "propainter-wire" / "pycache").rglob("*.pyc"))
    # the command's own modules, imported after the switch, are compiled there
    assert any("propainter_wire" in str(p) and p.name.startswith("inpaint.") for p in compiled), compiled[:5]


def test_command_leaves_the_environment_alone_when_off(tmp_path):
    done = _run(tmp_path, PROPAINTER_WIRE_BYTECODE_CACHE="0")
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "propainter-wire" / "pycache").exists()


def test_a_bad_value_is_skipped_at_start_up(tmp_path):
    done = _run(tmp_path, PROPAINTER_WIRE_BYTECODE_CACHE="maybe")
    # --help does not build a Tuning: the switch is skipped at start-up, nothing is written
    assert done.returncode == 0
    assert not (tmp_path / "propainter-wire" / "pycache").exists()
