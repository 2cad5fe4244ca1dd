"""Creating the GPU's CUDA context on a thread while torch is still being imported.

Torch creates the device's *primary context* (the one context per device that the CUDA runtime
shares in a process) at its first CUDA call, after ``import torch`` has finished: ``cuInit`` and
the context's creation then stand between the import and the first kernel. Both are driver calls
that need no torch. Started at the top of a command through the driver library (``libcuda`` via
ctypes, whose foreign calls release the GIL), they overlap the import; torch later retains the
same primary context and finds it made.

Nothing here raises: without a driver (a CPU machine, macOS), or when a call fails, the thread
ends and torch creates the context itself as before. The context is retained once and never
released: it is the one torch uses until the process ends.
"""

from __future__ import annotations

import ctypes
import threading

from .early_import import THREAD_PREFIX

# named as an early import: a command ending without the fast exit waits for it (join_early_imports)
# rather than tearing the interpreter down while the driver initialises
THREAD_NAME = THREAD_PREFIX + "cuda-context"
_DRIVER = "libcuda.so.1"


def device_index(device: str) -> int | None:
    """The CUDA device ordinal a ``--device`` value will use: ``auto``/``cuda`` -> 0 (the current
    device of a fresh process), ``cuda:N`` -> N; None for ``cpu`` or an unknown value."""
    name = device.strip().lower()
    if name in ("auto", "cuda"):
        return 0
    if name.startswith("cuda:") and name[5:].isdigit():
        return int(name[5:])
    return None


def start_context(device: str, loader=None) -> threading.Thread | None:
    """Start creating the primary context of ``device``'s GPU on a daemon thread (None: nothing to do).

    Args:
        device: a ``--device`` value.
        loader: opens the driver library by name (``ctypes.CDLL``; a stand-in in tests).
    """
    index = device_index(device)
    if index is None:
        return None
    thread = threading.Thread(target=retain_primary_context, args=(index, loader or ctypes.CDLL),
                              name=THREAD_NAME, daemon=True)
    thread.start()
    return thread


def retain_primary_context(index: int, loader=ctypes.CDLL) -> bool:
    """``cuInit``, then retain device ``index``'s primary context; True when it is made.

    Ordinals follow ``CUDA_VISIBLE_DEVICES`` (the driver applies it), as torch's do.
    """
    try:
        driver = loader(_DRIVER)
        if driver.cuInit(0) != 0:
            return False
        handle = ctypes.c_int()
        if driver.cuDeviceGet(ctypes.byref(handle), ctypes.c_int(index)) != 0:
            return False
        context = ctypes.c_void_p()
        return driver.cuDevicePrimaryCtxRetain(ctypes.byref(context), handle) == 0
    except (OSError, AttributeError):  # no driver library here, or one without these entry points
        return False
