"""``propainter-wire batch JOBS``: many shots back to back in warm workers (see docs/batch.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config import InpaintConfig
from ..errors import InputError


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..batch.jobs import OPTIONS

    p.add_argument("jobs", type=Path, metavar="JOBS",
                   help="CSV, JSON or YAML list of shots: input, mask, output, and any inpaint option")
    p.add_argument("--devices", default=None,
                   help="comma list of workers: cuda:0,cuda:1 or cpu (cpu may repeat); default: every GPU, "
                        "else one CPU worker")
    p.add_argument("--resume", action="store_true", help="skip finished shots, finish interrupted ones")
    p.add_argument("--summary", type=Path, default=None,
                   help="where the summary .json and .md go (default: JOBS_STEM.summary.* next to JOBS)")
    p.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                   help="run on Ray: a local instance, or the cluster at ADDRESS ('auto': the one this node "
                        "joined); needs pip install propainter-wire[ray]")
    p.add_argument("--split", default="auto", metavar="N",
                   help="cut every shot into N time ranges run on different workers; auto (default): long "
                        "shots over workers the batch leaves idle; 1: never (see docs/batch.md)")
    p.add_argument("--quiet", action="store_true", help="no progress, only warnings and the final line")
    group = p.add_argument_group("defaults for every shot (a jobs-file column of the same name wins)")
    helps = _inpaint_helps()
    for name, kind in OPTIONS.items():
        flag = "--" + name.replace("_", "-")
        text = helps.get(flag) or f"the jobs file's {name} column, for every shot"
        if "bool" in kind:
            group.add_argument(flag, dest=f"opt_{name}", action="store_true", default=None, help=text)
        else:
            group.add_argument(flag, dest=f"opt_{name}", default=None, metavar=name.upper(), help=text)


def _inpaint_helps() -> dict[str, str]:
    """Each ``inpaint`` option's help line, by flag (the batch defaults mean the same)."""
    from .inpaint import add_arguments as add_inpaint_arguments

    parser = argparse.ArgumentParser(add_help=False)
    add_inpaint_arguments(parser)
    return {flag: action.help for action in parser._actions for flag in action.option_strings if action.help}


def defaults_from_args(args: argparse.Namespace) -> InpaintConfig:
    """The settings given on the command line, on top of ``InpaintConfig()``, validated."""
    from ..batch.jobs import OPTIONS, parse_option

    given = {}
    for name in OPTIONS:
        value = getattr(args, f"opt_{name}", None)
        if value is not None:
            given[name] = value if isinstance(value, bool) else parse_option(name, value, "--" + name.replace("_", "-"))
    return InpaintConfig(debug=args.debug, **given).validate()


def parse_devices(text: str | None) -> list[str]:
    """``--devices`` -> one entry per worker; default: every CUDA device, else ``["cpu"]``."""
    if text is None or text.strip() in ("", "all", "auto"):
        import torch

        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        return [f"cuda:{i}" for i in range(count)] or ["cpu"]
    devices = [d.strip() for d in text.split(",") if d.strip()]
    for device in devices:
        if device != "cpu" and not (device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit())):
            raise InputError(f"--devices: unknown device '{device}' (cpu, cuda or cuda:N, comma-separated)")
    return devices


def probe(shots) -> dict[int, tuple[int, int, int]]:
    """row -> (frames, height, width) of each readable shot (unreadable ones fail later, in their worker)."""
    from ..io import open_frames

    sizes = {}
    for shot in shots:
        try:
            source = open_frames(shot.input)
            try:
                sizes[shot.row] = (len(source), source.height, source.width)
            finally:
                source.close()
        except Exception:  # noqa: BLE001 (the shot's own run reports it, as a failed shot)
            continue
    return sizes


def run(args: argparse.Namespace) -> int:
    """Run every shot; write the summary; exit 0 only when every shot finished (1: some failed, 130: stopped)."""
    import time

    from ..batch.jobs import load_jobs
    from ..batch.progress import BatchProgress
    from ..batch.summary import summary_paths, write_summary
    from ..tuning import Tuning

    tuning = Tuning.from_env()
    jobs = args.jobs.expanduser().resolve()
    shots = load_jobs(jobs, defaults_from_args(args))
    paths = summary_paths(jobs, args.summary.expanduser().resolve() if args.summary else None)
    from ..batch.plan import parse_split, split_counts

    split = parse_split(args.split)
    devices = parse_devices(args.devices) if args.ray is None else None
    # on Ray the cluster's actors are counted only once it is joined: auto splits over --devices' entries
    workers = len(devices) if devices is not None else len(parse_devices(args.devices)) if args.devices else 1
    sizes = probe(shots)
    lengths = {r: s[0] for r, s in sizes.items()}
    counts = split_counts(shots, lengths, split, workers, args.resume)
    splits = {}
    if any(n > 1 for n in counts.values()):
        from ..batch.split import expand

        shots_in, (shots, splits) = shots, expand(shots, lengths, counts, args.resume)
        sizes = probe(shots)

    def cost(shot) -> float:
        t, h, w = sizes.get(shot.row, (0, 0, 0))
        return float(t) * h * w

    progress = BatchProgress(shots, {row: s[0] for row, s in sizes.items()}, quiet=args.quiet)
    clock = time.perf_counter()
    try:
        if args.ray is not None:
            from ..batch.ray_runner import run_ray

            outcome = run_ray(shots, args.ray, tuning, resume=args.resume, progress=progress, cost=cost,
                              devices=args.devices)
        else:
            from ..batch.local import run_local

            outcome = run_local(shots, devices, tuning, resume=args.resume, progress=progress,
                                cost=cost)
    finally:
        progress.close()
    if splits:
        from ..batch.split import collect

        outcome.results = collect(shots_in, splits, outcome.results)
    data = write_summary(outcome.results, jobs, paths, time.perf_counter() - clock, outcome.interrupted,
                         runner="ray" if args.ray is not None else "local")
    counts = ", ".join(f"{n} {s}" for s, n in sorted(data["status"].items()))
    print(f"{data['shots']} shots: {counts} -> {paths[1]}", file=sys.stderr if outcome.interrupted else sys.stdout)
    if outcome.interrupted:
        print("propainter-wire: interrupted; finished frames are kept (rerun the batch with --resume)",
              file=sys.stderr)
        return 130
    return 0 if data["ok"] else 1
