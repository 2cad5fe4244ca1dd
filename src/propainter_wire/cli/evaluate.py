"""``propainter-wire evaluate``: measure quality on ground-truth cases (the quality harness)."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..quality.evaluate import add_evaluate_arguments

    add_evaluate_arguments(p)


def run(args: argparse.Namespace) -> int:
    from ..quality.evaluate import evaluate_command

    return evaluate_command(args)
