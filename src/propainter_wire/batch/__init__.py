"""Many shots in warm workers: ``propainter-wire batch`` on this machine's devices or a Ray cluster.

jobs (the jobs file -> :class:`Shot`), worker (a warm worker running shots through the same file run
as ``inpaint``), local (one worker process per device), ray_runner (one Ray actor per GPU or CPU
worker), split (one long shot cut into time ranges), summary and progress.
"""

from .jobs import Shot, load_jobs
from .worker import ShotResult, WarmWorker

__all__ = ["Shot", "ShotResult", "WarmWorker", "load_jobs"]
