"""Importing torch on a thread from the moment a command knows it will need it.

``import torch`` is the longest step before the first kernel (1.2-1.8 s on a 2-core CPU with
compiled bytecode, several seconds on a GPU machine's first run). The engine loader imports it
anyway, but only once the command's own modules are imported and the inputs are opened;
started here, at the top of the command, the import overlaps that work. The loader's own
``import torch`` then waits on the module's import lock and finds it done.

While it runs, the interpreter may hand the GIL round faster (``switch_interval``). An import
gives the GIL up at every file it reads; a thread beside it that runs Python (the command's own
imports, parsing, decoding's bookkeeping) then keeps it until the switch interval (5 ms by default)
asks it back. On the H100 machine's host, ``import torch`` beside one such thread took 30.8 s at
5 ms and 8.6 s at 0.5 ms (4.6 s alone; no bytecode there, so every module compiled).

A thread still inside an import when the interpreter tears down aborts the process, so a
command that ends without waiting for the engine calls :func:`join_early_imports` first (the
fast exit of :func:`propainter_wire.cli.leave` needs no wait: it skips the teardown).
"""

from __future__ import annotations

import importlib
import sys
import threading

THREAD_PREFIX = "early-import-"


def import_early(module: str, switch_interval: float | None = None) -> threading.Thread | None:
    """Start importing ``module`` on a daemon thread; None when it is imported already.

    Args:
        switch_interval: seconds; while the import runs, ``sys.setswitchinterval`` is at most this
            (the interpreter's own value comes back when it ends, unless something else changed it
            meanwhile). None leaves it alone.
    """
    if module in sys.modules:
        return None
    thread = threading.Thread(target=_quiet_import, args=(module, switch_interval), name=THREAD_PREFIX + module,
                              daemon=True)
    thread.start()
    return thread


def _quiet_import(module: str, switch_interval: float | None) -> None:
    before = sys.getswitchinterval()
    lowered = switch_interval is not None and switch_interval < before
    if lowered:
        sys.setswitchinterval(switch_interval)
    try:
        importlib.import_module(module)
    except BaseException:  # noqa: BLE001 (the real import, on the loader's thread, raises it where it is handled)
        pass
    finally:
        if lowered and sys.getswitchinterval() == switch_interval:
            sys.setswitchinterval(before)


def join_early_imports() -> None:
    """Wait for every import started by :func:`import_early` to end."""
    for thread in threading.enumerate():
        if thread.name.startswith(THREAD_PREFIX) and thread is not threading.current_thread():
            thread.join()
