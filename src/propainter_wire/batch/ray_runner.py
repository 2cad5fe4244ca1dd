"""Shots on a Ray cluster (or a local Ray instance): one actor per GPU, or per CPU worker, each a warm worker.

``ray`` is imported only here, and only when ``batch --ray`` runs (``pip install propainter-wire[ray]``).
Before any shot starts, one task per node checks that the node can read every shot's inputs and
write every output folder: the nodes must share storage (the same paths everywhere), and a path
one node cannot reach is named in a one-line error. Shots go to free actors longest first; a shot
whose actor dies is retried once on a fresh actor. Each shot runs through the same file run as
``inpaint``, so the frames equal a local run's.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Callable
from pathlib import Path

from ..errors import InputError
from ..tuning import Tuning
from .jobs import Shot
from .local import RETRIES, BatchOutcome
from .worker import FAILED, INTERRUPTED, NOT_RUN, ShotResult, WarmWorker, result_for

log = logging.getLogger("propainter_wire")
NAMESPACE = "propainter-wire"


def import_ray():
    try:
        import ray
    except ImportError:
        raise InputError("--ray needs Ray: pip install 'propainter-wire[ray]' (or pip install ray)") from None
    return ray


class ShotActor:
    """A Ray actor around a :class:`WarmWorker` (created with ``ray.remote(ShotActor).options(...)``)."""

    def __init__(self, device: str, tuning: Tuning, before_shot=None) -> None:
        import socket

        self.worker = WarmWorker(device, tuning, before_shot)
        self.where = f"{socket.gethostname()}/{device}"

    def run(self, shot: Shot, resume: bool) -> ShotResult:
        return self.worker.run(shot, resume).replace(worker=self.where)


def path_problems(shots: list[Shot]) -> list[str]:
    """What this node cannot reach: inputs it cannot read, output folders it cannot create or write.

    Only paths the driver itself reaches are checked (a missing input is a failed shot, not a
    storage problem). Runs as a Ray task on every node.
    """
    import socket

    host = socket.gethostname()
    problems = []
    for shot in shots:
        for path in (shot.input, shot.mask):
            if not os.access(path, os.R_OK):
                problems.append(f"node {host} cannot read {path}")
        folder = Path(shot.output)
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if not os.access(folder, os.W_OK | os.X_OK):
            problems.append(f"node {host} cannot write {shot.output}")
    return problems


def check_nodes(ray, shots: list[Shot]) -> None:
    """Run :func:`path_problems` on every alive node; raise the first problem as one line."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    reachable = [s for s in shots if Path(s.input).exists() and Path(s.mask).exists()]
    task = ray.remote(num_cpus=0)(path_problems)
    refs = [task.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False))
            .remote(reachable) for node in ray.nodes() if node.get("Alive")]
    problems = [p for found in ray.get(refs) for p in found]
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise InputError(f"{problems[0]}{more}: every node must see the same paths (shared storage; "
                         "see docs/batch.md)")


def _worker_devices(ray, devices: str | None) -> list[str]:
    """One entry per actor: ``cuda`` per GPU of the cluster, else ``cpu`` per node (``--devices``: as given)."""
    if devices:
        return [d.strip() for d in devices.split(",") if d.strip()]
    gpus = int(ray.cluster_resources().get("GPU", 0))
    if gpus:
        return ["cuda"] * gpus
    return ["cpu"] * max(1, sum(1 for n in ray.nodes() if n.get("Alive")))


def run_ray(shots: list[Shot], address: str, tuning: Tuning, resume: bool = False, progress=None,
            cost: Callable[[Shot], float] | None = None, devices: str | None = None,
            before_shot: Callable[[Shot], None] | None = None) -> BatchOutcome:
    """Run ``shots`` on Ray; ``address``: ``local`` (start a local instance), ``auto`` or ``HOST:PORT``.

    A Ray already initialised in this process (tests, notebooks) is used as it is. ``devices``: one
    actor per entry (``cpu`` or ``cuda``); default one per GPU of the cluster, else one per node.
    """
    ray = import_ray()
    started_here = not ray.is_initialized()
    if started_here:
        kwargs = {"namespace": NAMESPACE, "include_dashboard": False, "log_to_driver": False}
        ray.init(**kwargs) if address == "local" else ray.init(address=address, **kwargs)
    try:
        check_nodes(ray, shots)
        return _dispatch(ray, shots, _worker_devices(ray, devices), tuning, resume, progress, cost, before_shot)
    finally:
        if started_here:
            ray.shutdown()


def _new_actor(ray, device: str, tuning: Tuning, before_shot):
    gpu = device.startswith("cuda")
    options = {"num_gpus": 1, "num_cpus": 1} if gpu else {"num_cpus": 1}
    return ray.remote(ShotActor).options(max_restarts=0, **options).remote(
        "cuda:0" if gpu else "cpu", tuning, before_shot)  # Ray shows each actor its own GPU as cuda:0


def _dispatch(ray, shots, devices, tuning, resume, progress, cost, before_shot) -> BatchOutcome:
    from ray.exceptions import RayActorError, WorkerCrashedError

    pending: deque[Shot] = deque(sorted(shots, key=cost, reverse=True) if cost is not None else shots)
    attempts = {s.row: 0 for s in shots}
    results: dict[int, ShotResult] = {}
    actors = [_new_actor(ray, d, tuning, before_shot) for d in devices]
    free = list(range(len(actors)))
    running: dict = {}  # ref -> (actor index, shot)
    interrupted = False
    try:
        while pending or running:
            while free and pending:
                i, shot = free.pop(0), pending.popleft()
                attempts[shot.row] += 1
                running[actors[i].run.remote(shot, resume)] = (i, shot)
                if progress is not None:
                    progress.start(shot, f"ray worker {i} ({devices[i]})")
            ready, _ = ray.wait(list(running), num_returns=1, timeout=0.5)
            for ref in ready:
                i, shot = running.pop(ref)
                free.append(i)
                try:
                    result = ray.get(ref).replace(attempts=attempts[shot.row])
                except (RayActorError, WorkerCrashedError) as exc:
                    log.warning("ray worker %d died running %s: %s", i, shot.name, " ".join(str(exc).split())[:200])
                    actors[i] = _new_actor(ray, devices[i], tuning, before_shot)
                    if attempts[shot.row] <= RETRIES:
                        pending.appendleft(shot)
                        continue
                    result = result_for(shot, FAILED, attempts=attempts[shot.row],
                                        error="its Ray worker died on every attempt")
                results[shot.row] = result
                if progress is not None:
                    progress.finish(result)
    except KeyboardInterrupt:
        interrupted = True
        for _, shot in running.values():  # its actor is killed below; finished frames stay for --resume
            results[shot.row] = result_for(shot, INTERRUPTED, attempts=attempts[shot.row])
    finally:
        for actor in actors:
            ray.kill(actor)
    final = [results.get(s.row, result_for(s, NOT_RUN, attempts=attempts[s.row])) for s in shots]
    return BatchOutcome(final, interrupted)
