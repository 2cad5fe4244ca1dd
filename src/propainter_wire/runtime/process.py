"""How long this process has been running: the start-up a user waits for before ``main`` runs."""

from __future__ import annotations

import os


def seconds_since_start() -> float | None:
    """Seconds since this process was started (exec), from ``/proc`` (Linux; 10 ms resolution).

    The process's start time (``/proc/self/stat`` field 22, clock ticks since boot) against the
    time since boot (``/proc/uptime``). None where ``/proc`` is absent (macOS, Windows).
    """
    try:
        with open("/proc/self/stat") as handle:
            # the command name (field 2) may hold spaces and parentheses: fields after the last ')'
            fields = handle.read().rsplit(")", 1)[1].split()
        with open("/proc/uptime") as handle:
            uptime = float(handle.read().split()[0])
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22 is the 20th after the name
    except (OSError, ValueError, IndexError):
        return None
    return max(0.0, uptime - started)
