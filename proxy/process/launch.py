"""Turning RunOptions into running processes: one, or N forked workers.

Binding happens as the starting user (root in a pod's init order), privileges are
dropped before the loop starts, and with ``--workers N`` metrics go through
prometheus-client's multiprocess mode in a per-run directory that the parent removes;
the parent retires a dead worker's live gauges there and forks its replacement.
The caller must set PROMETHEUS_MULTIPROC_DIR before this module is imported.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import tempfile

from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from proxy.http.codec import codec_named
from proxy.mesh import Mesh
from proxy.observe.identity import resolve_workload
from proxy.observe.metrics import ReloadMetrics
from proxy.process import cpus, loop, workers
from proxy.process.options import RunOptions
from proxy.process.overload import worker_overload
from proxy.process.privileges import drop_privileges
from proxy.process.server import BoundSockets, ProxyServer, bind_all
from proxy.reload import Initial, Reloader, gcfreeze, load_initial
from proxy.reload.gcpause import gc_paused

log = logging.getLogger("proxy.process.launch")
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def build_server(
    opts: RunOptions,
    socks: BoundSockets,
    initial: Initial,
    registry: CollectorRegistry,
    exposition: CollectorRegistry,
    state_dir: str | None = None,
) -> ProxyServer:
    """One process's server: the live config, the mesh it feeds, the listeners' state."""
    # HTTP and tcp routing; reloads apply to it. Its clusters' pools speak --http-codec
    # and wait for connections within the worker's overload guard.
    overload = worker_overload(initial.loaded.config.mesh.overload)
    mesh = Mesh(initial.loaded.config, codec=codec_named(opts.http_codec), overload=overload)
    # A new config's mesh snapshot is built in the thread that parsed it; right after
    # each swap the config in force is frozen out of the collector's way (see
    # proxy.reload.gcfreeze).
    reloader = Reloader(
        initial,
        ReloadMetrics(registry),
        state_dir,
        on_swap=gcfreeze.settle,
        prepare=mesh.prepare,
    )
    return ProxyServer(opts, socks, registry, exposition, reloader, mesh)


def _serve(opts: RunOptions, initial: Initial, state_dir: str | None = None) -> int:
    socks = bind_all(opts)
    drop_privileges(opts.uid, opts.gid)
    registry = CollectorRegistry()
    metrics_dir = os.environ.get(MULTIPROC_ENV)
    if metrics_dir and opts.workers > 1:
        exposition = CollectorRegistry()
        MultiProcessCollector(exposition, metrics_dir)  # type: ignore[no-untyped-call]
    else:
        exposition = registry
    with gc_paused():  # the mesh of a big config is as many objects again (see below)
        server = build_server(opts, socks, initial, registry, exposition, state_dir)
        gcfreeze.settle()  # frozen with the config, before any traffic
    try:
        return loop.run(server.run())
    finally:
        if metrics_dir and opts.workers > 1:
            # This worker's livesum/livemax gauge files go, so /metrics stops counting it.
            mark_process_dead(os.getpid(), metrics_dir)  # type: ignore[no-untyped-call]


def load_and_freeze(path: str | None) -> Initial:
    """The start-up config, out of the collector's way (see proxy.reload.gcfreeze).

    What start-up imported is collected once and frozen; then the config (a million
    objects for 10,000 services, none of them in cycles) is read with the collector
    paused, and frozen too: before the fork with ``--workers``, as the gc module's
    documentation advises. The collector traversing it as it grew made a
    10,000-service start 2.7 s slower.
    """
    gcfreeze.settle()
    with gc_paused():
        initial = load_initial(path)
        gcfreeze.settle()
    return initial


def run_proxy(opts: RunOptions) -> int:
    # source_workload of every metric: --workload, else the pod's app label / name (env).
    opts = dataclasses.replace(opts, workload=resolve_workload(opts.workload, os.environ).name)
    initial = load_and_freeze(opts.config)
    if opts.workers == 1:
        return _serve(opts, initial)
    crowded = cpus.oversubscribed(opts.workers, cpus.current())
    if crowded:
        log.warning("%s", crowded)
    metrics_dir = os.environ[MULTIPROC_ENV]
    # PUT /config reaches every worker through a file here (see proxy/reload/put.py).
    state_dir = tempfile.mkdtemp(prefix="mesh-proxy-state-")
    if opts.uid is not None and opts.gid is not None and os.geteuid() == 0:
        os.chown(state_dir, opts.uid, opts.gid)  # workers write it after dropping root

    starting = workers.Credentials.current()

    def worker(_: int) -> int:
        starting.restore()  # a replacement is forked by the parent, which holds 1337
        return _serve(opts, initial, state_dir)

    def retire(pid: int) -> None:
        # A killed worker never ran its own cleanup: drop its live gauges (its
        # counters stay, so totals keep what it counted before it died).
        mark_process_dead(pid, metrics_dir)  # type: ignore[no-untyped-call]

    try:
        return workers.run_workers(
            opts.workers,
            worker,
            lambda: starting.hold_as(opts.uid, opts.gid),
            on_death=retire,
        )
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
        shutil.rmtree(state_dir, ignore_errors=True)
