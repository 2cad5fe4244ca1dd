"""``propainter-wire doctor``: check the GPU and CPU paths and print a report."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON only")
    p.add_argument("--device", default="auto", help="device to check: auto, cpu, cuda or cuda:N")


def run(args: argparse.Namespace) -> int:
    from ..doctor import doctor_command

    return doctor_command(as_json=args.json, device=args.device)
