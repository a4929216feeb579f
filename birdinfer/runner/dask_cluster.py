"""Dask as a file map: a `concurrent.futures` executor on an existing scheduler, or on a
LocalCluster started here (`client.open_executor` picks it for `executor.kind: dask`).

Only this module imports Dask, and only when a run asks for it: `[dask]` is an extra.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import Executor
from contextlib import contextmanager

from birdinfer.errors import ConfigError

log = logging.getLogger(__name__)


@contextmanager
def dask_executor(
    scheduler: str | None, local_workers: int | None, task_threads: int = 2
) -> Iterator[Executor]:
    """A `concurrent.futures` executor on an existing Dask scheduler, or on a LocalCluster of
    `local_workers` processes sharing this machine's cores, each running one engine on its share
    (the run's plan sizes it) fed by `task_threads` task threads (two: one task's files decode
    while the other's finish)."""
    try:
        import distributed  # noqa: F401 - only to say what to install when it is missing
    except ImportError as exc:
        raise ConfigError(
            "config key 'executor.kind': 'dask' needs Dask (pip install 'birdinfer[dask]')"
        ) from exc
    cluster = None
    if scheduler:
        client = connect(scheduler)
    else:
        workers = local_workers or 1
        cluster, client = local_cluster(workers, task_threads)
    try:
        log.info("Dask: %s", client)
        yield client.get_executor(pure=False)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def connect(scheduler: str):
    """A client of the Dask scheduler at `scheduler`; a ConfigError naming the address, within
    Dask's connect timeout (`distributed.comm.timeouts.connect`), when the address is malformed
    or nothing answers there. The address is tried with a plain TCP connection first: a Client
    that failed to connect is left half-started and prints a traceback when collected."""
    import dask.config
    from dask.utils import parse_timedelta
    from distributed import Client
    from distributed.comm import parse_address, parse_host_port

    timeout = parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"), "s")
    try:
        scheme, location = parse_address(scheduler)
        if scheme == "tcp":
            with socket.create_connection(parse_host_port(location), timeout=timeout):
                pass
        return Client(scheduler, timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - a malformed or unreachable address, in any form
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError(
            f"config key 'executor.scheduler': no Dask scheduler answered at {scheduler!r} "
            f"within {timeout:g} s ({reason})"
        ) from None


# A local cluster started here has no dashboard: nothing reads its workers' statistical profiler
# or its system monitor, and its event-loop watchdog (the tick) need not wake every process
# every 20 ms, nor the memory monitor every 100 ms. Idle work takes cores from the engine the
# cluster feeds (docs/distributed.md, "Quiet local clusters", has what it cost and saves). A
# cluster of your own takes these keys from its Dask config.
QUIET_LOCAL_CLUSTER = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.worker.memory.monitor-interval": "1s",
}


@contextmanager
def _sigint_ignored_by_children() -> Iterator[None]:
    """Worker processes started meanwhile inherit SIGINT ignored: a terminal's Ctrl-C reaches
    the whole process group, and each would print a KeyboardInterrupt traceback while this
    process closes the cluster anyway. (In the main thread only, where handlers are set; this
    process ignores SIGINT for the moments the cluster takes to start.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def local_cluster(workers: int, threads_per_worker: int, cores_per_worker: int | None = None):
    """A Dask LocalCluster of `workers` processes on this machine (loopback only, no dashboard,
    QUIET_LOCAL_CLUSTER) and a client of it. `cores_per_worker` (default: its task threads) is
    what each worker's tasks share, declared as the worker's Dask resource "cores": one task
    thread with 8 cores runs one engine on 8 cores (`worker.own_cores` reads it)."""
    import dask.config
    from distributed import Client, LocalCluster  # before config.set: it adds Dask's defaults

    resources = {"cores": cores_per_worker} if cores_per_worker else None
    with (
        dask.config.set(QUIET_LOCAL_CLUSTER),  # the scheduler, nannies and workers read it now
        _sigint_ignored_by_children(),
    ):
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=threads_per_worker,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            resources=resources,
        )
        return cluster, Client(cluster)
