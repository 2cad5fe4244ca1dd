"""``propainter-wire mask wire|track``: masks from a few clicks on a wire, or key masks carried by flow."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..wires.cli import add_mask_arguments

    add_mask_arguments(p)


def run(args: argparse.Namespace) -> int:
    from ..wires.cli import mask_command

    return mask_command(args)
