"""The command-line package: every command registered, every inpaint flag mapped to its setting."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from propainter_wire.cli import build_parser
from propainter_wire.cli.inpaint import config_from_args

SRC = Path(__file__).resolve().parents[1] / "src"


def test_every_command_is_registered():
    parser = build_parser()
    for argv in (["inpaint", "-i", "a", "-m", "b", "-o", "c"], ["weights", "list"], ["doctor", "--json"], ["demo"],
                 ["evaluate"]):
        assert parser.parse_args(argv).command == argv[0]


def test_inpaint_flags_become_settings():
    args = build_parser().parse_args(
        ["--debug", "inpaint", "-i", "v", "-m", "m", "-o", "o", "--engine", "classic", "--max-side", "320",
         "--mask-dilation", "2", "--flow-mask-dilation", "6", "--scratch", "disk", "--save-video", "--resume"])
    config = config_from_args(args)
    assert (config.engine, config.max_side, config.mask_dilation, config.flow_mask_dilation) == ("classic", 320, 2, 6)
    assert config.scratch == "disk" and config.save_video and config.resume and config.debug


def test_module_entry_point_runs(tmp_path):
    env = {"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "propainter_wire", "inpaint", "-i", str(tmp_path / "none"),
                           "-m", str(tmp_path / "none"), "-o", str(tmp_path / "out")],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_inpaint_wires_margin():
    parser = build_parser()
    args = parser.parse_args(["inpaint", "-i", "v", "--wires", "w.json", "-o", "o"])
    from propainter_wire.config import INPAINT_WIRE_GROW

    assert args.wire_grow == INPAINT_WIRE_GROW == 0  # the masks inpainted stop at the wire's soft edge
    assert parser.parse_args(["inpaint", "-i", "v", "--wires", "w.json", "-o", "o", "--wire-grow", "2"]).wire_grow == 2
