"""``propainter-wire weights list|verify|download``: the ProPainter checkpoints."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("list", "verify", "download"),
                   help="list: where each checkpoint is looked for; verify: check their checksums; "
                        "download: fetch the missing ones")
    p.add_argument("--weights-dir", type=Path, default=None, help="folder holding the three checkpoints")
    p.add_argument("--url", default=None, help="download from this base URL instead of the official release")
    p.add_argument("--quiet", action="store_true", help="no progress, only errors")


def run(args: argparse.Namespace) -> int:
    from ..tuning import Tuning
    from ..weights import weights_command

    return weights_command(args.action, args.weights_dir, url=args.url, quiet=args.quiet,
                           env_dir=Tuning.from_env().weights_dir)
