"""Help texts: every option of every command has a help line; ``inpaint --help`` ends with examples."""

from __future__ import annotations

import argparse

from propainter_wire.cli import build_parser


def _parsers(parser: argparse.ArgumentParser, name: str = "propainter-wire"):
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from _parsers(sub, f"{name} {sub_name}")


def _missing_help(parser: argparse.ArgumentParser) -> list[str]:
    missing = []
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        if action.help == argparse.SUPPRESS:
            continue
        if not (action.help or "").strip():
            missing.append("/".join(action.option_strings) or action.dest)
    return missing


def test_every_option_has_help():
    missing = {name: m for name, parser in _parsers(build_parser()) if (m := _missing_help(parser))}
    assert not missing, missing


def test_inpaint_help_ends_with_examples():
    parser = dict(_parsers(build_parser()))["propainter-wire inpaint"]
    assert parser.formatter_class is argparse.RawDescriptionHelpFormatter
    text = parser.format_help()
    tail = text[text.index("examples:"):]
    assert tail.count("propainter-wire inpaint") == 3 and text.rstrip().endswith(tail.rstrip())


def test_progress_lines_when_not_a_terminal():
    import io

    from propainter_wire.pipeline.progress import LineProgress, progress_bar

    stream = io.StringIO()
    bar = progress_bar(20, "flow", stream=stream)
    assert isinstance(bar, LineProgress)
    for _ in range(20):
        bar.update()
    bar.close()
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue() and 9 <= len(lines) <= 11
    assert lines[0].startswith("propainter-wire: flow 10 % (2/20)") and "100 % (20/20)" in lines[-1]


def test_run_ends_with_one_summary_line_on_stderr(tmp_path, capsys):
    import cv2
    import numpy as np

    from propainter_wire.cli import main

    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        cv2.imwrite(str(frames / f"{i:03d}.png"), np.full((32, 48, 3), 60 * i, np.uint8))
    mask = np.zeros((32, 48), np.uint8)
    mask[10:20, 10:30] = 255
    cv2.imwrite(str(tmp_path / "m.png"), mask)
    argv = ["inpaint", "-i", str(frames), "-m", str(tmp_path / "m.png"), "--engine", "classic"]
    assert main([*argv, "-o", str(tmp_path / "out")]) == 0
    captured = capsys.readouterr()
    last = captured.err.strip().splitlines()[-1]
    assert last.startswith("3 frames inpainted") and str(tmp_path / "out") in last and not captured.out
    assert main([*argv, "-o", str(tmp_path / "quiet"), "--quiet"]) == 0
    assert not capsys.readouterr().err.strip()
