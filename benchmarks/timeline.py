"""What every thread of one CLI run is doing, over time: a sampling profiler of the process.

    python benchmarks/timeline.py [--interval-ms 5] [--json OUT.json] -- inpaint -i F -m M -o O ...

Runs ``propainter-wire ARGS`` in this process exactly as the command does (``cli.main()`` with
``sys.argv``: the bytecode cache, the clock since the process started), while a thread samples
every thread's stack each ``--interval-ms``. Each sample is labelled by the innermost frame of
this package and, where the thread is importing, the top-level module being imported; runs of
one label become segments. It prints, per thread, the segments of 20 ms or more on the process's
clock (seconds since exec, so interpreter start is included), then where the main thread's time
went. The sampler holds the GIL a few microseconds per sample: the run is slowed by about the
interval's share of that, not by its length.
"""

from __future__ import annotations

import sys
import threading
import time

_T0 = time.perf_counter()  # as early as this file runs

import argparse  # noqa: E402
import json  # noqa: E402
from collections import defaultdict  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
PACKAGE = "propainter_wire"


def _label(frame) -> str:
    """``importing MOD`` while inside an import, else ``module:function`` of the innermost frame of
    this package (plus the innermost frame's function when that is a library's), else the innermost."""
    innermost = frame
    ours = None
    importing = None
    f = frame
    while f is not None:
        code = f.f_code
        if ours is None and PACKAGE in code.co_filename and "timeline.py" not in code.co_filename:
            ours = f
        if code.co_name == "_find_and_load" and "importlib" in code.co_filename:
            importing = f.f_locals.get("name", importing)  # the outermost import wins (walking outwards)
        f = f.f_back
    if importing is not None:
        return f"importing {str(importing).split('.')[0]}"
    if ours is None:
        code = innermost.f_code
        return f"{Path(code.co_filename).stem}:{code.co_name}"
    code = ours.f_code
    name = f"{code.co_filename.split(PACKAGE)[-1].strip('/').removesuffix('.py')}:{code.co_name}"
    if innermost is not ours:
        name += f" > {innermost.f_code.co_name}"
    return name


class Sampler:
    """Samples every other thread's stack on a daemon thread; ``segments()`` merges runs of one label."""

    def __init__(self, interval: float, offset: float) -> None:
        self.interval, self.offset = interval, offset
        self.samples: list[tuple[float, str, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        me = threading.get_ident()
        while not self._stop.is_set():
            now = time.perf_counter() - _T0 + self.offset
            names = {t.ident: t.name for t in threading.enumerate()}
            for ident, frame in sys._current_frames().items():
                if ident != me:
                    self.samples.append((now, names.get(ident, str(ident)), _label(frame)))
            time.sleep(self.interval)

    def segments(self) -> dict[str, list[tuple[float, float, str]]]:
        """Per thread name, ``(start, end, label)`` in seconds since exec."""
        out: dict[str, list[list]] = defaultdict(list)
        for t, thread, label in self.samples:
            runs = out[thread]
            if runs and runs[-1][2] == label and t - runs[-1][1] <= 3 * self.interval:
                runs[-1][1] = t
            else:
                runs.append([t, t, label])
        return {k: [tuple(r) for r in v] for k, v in out.items()}


def _pool_name(thread: str) -> str:
    return thread.rsplit("_", 1)[0] if thread.startswith("ThreadPoolExecutor") else thread


def main() -> int:
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--interval-ms", type=float, default=5.0)
    p.add_argument("--json", type=Path, default=None, help="write the samples' segments here")
    p.add_argument("--min-ms", type=float, default=20.0, help="print segments at least this long")
    opts = p.parse_args(argv[:split])
    from propainter_wire.runtime.process import seconds_since_start

    offset = (seconds_since_start() or 0.0)  # seconds from exec to _T0 (10 ms resolution)
    offset -= time.perf_counter() - _T0
    sampler = Sampler(opts.interval_ms / 1000, offset).start()
    from propainter_wire.cli import main as cli_main

    sys.argv = ["propainter-wire", *argv[split + 1:]]
    code = cli_main()
    returned = time.perf_counter() - _T0 + offset
    sampler.stop()
    segments = sampler.segments()
    print(f"exit code {code}; main() returned at {returned:.3f} s since exec", file=sys.stderr)
    for thread in sorted(segments, key=lambda k: segments[k][0][0]):
        runs = [s for s in segments[thread] if (s[1] - s[0]) * 1000 >= opts.min_ms]
        if not runs:
            continue
        print(f"-- {thread}", file=sys.stderr)
        for start, end, label in runs:
            print(f"  {start:7.3f} {end:7.3f} {end - start:6.3f}  {label}", file=sys.stderr)
    totals: dict[str, float] = defaultdict(float)
    for start, end, label in segments.get("MainThread", []):
        totals[label] += end - start + sampler.interval
    print("-- main thread, seconds by label", file=sys.stderr)
    for label, secs in sorted(totals.items(), key=lambda kv: -kv[1])[:30]:
        print(f"  {secs:7.3f}  {label}", file=sys.stderr)
    if opts.json is not None:
        opts.json.write_text(json.dumps({"returned": returned, "segments": segments}))
    return code


if __name__ == "__main__":
    raise SystemExit(main())
