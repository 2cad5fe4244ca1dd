"""The command as its own process: the parser of one command, the fast exit, torch imported early."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from propainter_wire.cli import build_parser, command_of, early
from propainter_wire.runtime.early_import import THREAD_PREFIX, import_early, join_early_imports
from propainter_wire.tuning import Tuning

SRC = Path(__file__).resolve().parents[1] / "src"


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith("PROPAINTER_WIRE_")}
    full.update(PYTHONPATH=str(SRC), **env)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=full, capture_output=True, text=True,
                          timeout=120)


def test_command_of_finds_the_first_command_word():
    assert command_of(["--debug", "inpaint", "-o", "mask"]) == "inpaint"
    assert command_of(["mask", "wire", "-i", "x"]) == "mask"
    assert command_of(["--help"]) is None


def test_parser_of_one_command_parses_it_and_imports_no_other():
    done = _python("""
        import sys
        from propainter_wire.cli import build_parser
        args = build_parser(only="weights").parse_args(["weights", "list"])
        others = [m for m in ("inpaint", "batch", "mask", "demo", "evaluate", "doctor")
                  if f"propainter_wire.cli.{m}" in sys.modules]
        print(args.command, others)
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "weights []"


def test_full_parser_still_knows_every_command():
    parser = build_parser()
    assert parser.parse_args(["doctor", "--json"]).command == "doctor"


_TEARDOWN = """
    import atexit, sys
    atexit.register(lambda: print("teardown", flush=True))
    print("written", end="")  # left in the buffer: the exit must flush it
    from propainter_wire.cli import leave
    {before}
    leave(3, {command!r})
"""


@pytest.mark.parametrize(("command", "before", "env", "teardown"), [
    ("inpaint", "", {}, False),                                       # the fast exit
    ("mask", "", {}, False),
    ("inpaint", "", {"PROPAINTER_WIRE_FAST_EXIT": "0"}, True),        # switched off
    ("batch", "", {}, True),                                          # workers and Ray shut down at exit
    ("inpaint", "sys.setprofile(lambda *a: None)", {}, True),         # a profiler writes its results at exit
    ("inpaint", "sys.settrace(lambda *a: None)", {}, True),
])
def test_leave(command, before, env, teardown):
    done = _python(_TEARDOWN.format(before=before, command=command), **env)
    assert done.returncode == 3, done.stderr
    assert done.stdout.startswith("written")
    assert ("teardown" in done.stdout) is teardown


def test_leave_refuses_a_bad_switch_value_by_keeping_the_teardown():
    done = _python(_TEARDOWN.format(before="", command="inpaint"), PROPAINTER_WIRE_FAST_EXIT="maybe")
    assert done.returncode == 3 and "teardown" in done.stdout


def test_module_entry_exits_with_the_commands_code(tmp_path):
    done = subprocess.run([sys.executable, "-m", "propainter_wire", "inpaint", "-i", str(tmp_path / "none"),
                           "-m", str(tmp_path / "none"), "-o", str(tmp_path / "out")],
                          env={**os.environ, "PYTHONPATH": str(SRC)}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("propainter-wire: error:")


def test_import_early_imports_on_a_thread(tmp_path, monkeypatch):
    (tmp_path / "pw_slow_module.py").write_text("import time\ntime.sleep(0.2)\nVALUE = 7\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    thread = import_early("pw_slow_module")
    assert thread is not None and thread.name == THREAD_PREFIX + "pw_slow_module"
    join_early_imports()
    assert not thread.is_alive()
    assert sys.modules["pw_slow_module"].VALUE == 7
    assert import_early("pw_slow_module") is None  # imported already: no thread


def test_import_early_lowers_the_switch_interval_while_it_imports(tmp_path, monkeypatch):
    (tmp_path / "pw_interval_module.py").write_text("import sys\nSEEN = sys.getswitchinterval()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    before = sys.getswitchinterval()
    try:
        sys.setswitchinterval(0.005)
        import_early("pw_interval_module", switch_interval=0.0005)
        join_early_imports()
        assert sys.modules["pw_interval_module"].SEEN == pytest.approx(0.0005)
        assert sys.getswitchinterval() == pytest.approx(0.005)  # given back once the import ended
        sys.setswitchinterval(0.0001)  # already below: left as it is
        (tmp_path / "pw_interval_module2.py").write_text("import sys\nSEEN = sys.getswitchinterval()\n")
        import_early("pw_interval_module2", switch_interval=0.0005)
        join_early_imports()
        assert sys.modules["pw_interval_module2"].SEEN == pytest.approx(0.0001)
        assert sys.getswitchinterval() == pytest.approx(0.0001)
    finally:
        sys.setswitchinterval(before)


def test_import_early_swallows_a_failed_import():
    thread = import_early("pw_no_such_module_anywhere")
    join_early_imports()
    assert thread is not None and not thread.is_alive()
    assert "pw_no_such_module_anywhere" not in sys.modules


def test_command_that_fails_early_with_torch_still_importing_exits_cleanly(tmp_path):
    # bad input: the one-line error while torch may still be importing; the exit must not abort (134)
    done = subprocess.run([sys.executable, "-m", "propainter_wire", "inpaint", "-i", str(tmp_path / "none"),
                           "-m", str(tmp_path / "none"), "-o", str(tmp_path / "out"), "--device", "cuda:0"],
                          env={**os.environ, "PYTHONPATH": str(SRC), "PROPAINTER_WIRE_FAST_EXIT": "0"},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(("engine", "device", "weights", "expected"), [
    ("propainter", "auto", False, True),
    ("classic", "auto", False, False),
    ("classic", "cpu", True, False),
    ("classic", "cuda", False, True),      # a GPU named is checked for the classic engine too
    ("auto", "auto", False, False),        # no checkpoints: the classic engine, no torch
    ("auto", "cpu", True, True),           # checkpoints found: propainter
])
def test_needs_torch(tmp_path, engine, device, weights, expected):
    folder = tmp_path / "w"
    folder.mkdir()
    if weights:
        for name in ("ProPainter.pth", "raft-things.pth", "recurrent_flow_completion.pth"):
            (folder / name).write_bytes(b"x")
    assert early.needs_torch(engine, device, folder, Tuning().weights_dir) is expected


@pytest.mark.parametrize(("words", "asked"), [
    (["inpaint", "-i", "a", "-m", "b", "-o", "c", "--engine", "propainter"], ("propainter", "auto")),
    (["inpaint", "-i", "a", "-m", "b", "-o", "c", "--engine=propainter", "--quiet"], ("propainter", "auto")),
    (["inpaint", "--device", "cuda:1", "-i", "a"], ("auto", "cuda:1")),
    (["inpaint", "-i", "a", "-m", "b", "-o", "c", "--engine", "classic"], ("classic", "auto")),
    (["inpaint", "-i", "a", "--engine", "classic", "--device"], None),  # unreadable: left to the parser
    (["inpaint", "--engine", "propainter", "--help"], None),
    (["inpaint", "--engine", "propainter", "--debug"], None),  # CUDA_LAUNCH_BLOCKING must come first
    (["mask", "wire", "--engine", "propainter"], None),
    ([], None),
])
def test_start_from_words_reads_only_what_decides_on_torch(monkeypatch, capsys, words, asked):
    started = []

    def start(engine, device, weights_dir, tuning):
        started.append((engine, device))
        return engine != "classic"

    monkeypatch.setattr(early, "start", start)
    assert early.start_from_words(words, Tuning()) is (asked is not None and asked[0] != "classic")
    assert started == ([] if asked is None else [asked])
    assert capsys.readouterr().err == ""  # the full parser reports a bad command line, once
