"""``propainter-wire demo``: inpaint a generated clip with ground truth (the quality harness's demo)."""

from __future__ import annotations

import argparse
import importlib


def _module():
    """The demo module: in the quality harness where it lives there, else at the package's top."""
    try:
        return importlib.import_module("propainter_wire.quality.demo")
    except ModuleNotFoundError as exc:
        if exc.name not in ("propainter_wire.quality", "propainter_wire.quality.demo"):
            raise
        return importlib.import_module("propainter_wire.demo")


def add_arguments(p: argparse.ArgumentParser) -> None:
    _module().add_demo_arguments(p)


def run(args: argparse.Namespace) -> int:
    return _module().demo_command(args)
