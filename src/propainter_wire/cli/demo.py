"""``propainter-wire demo``: inpaint a generated clip with ground truth (the quality harness's demo)."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..quality.demo import add_demo_arguments

    add_demo_arguments(p)


def run(args: argparse.Namespace) -> int:
    from ..quality.demo import demo_command

    return demo_command(args)
