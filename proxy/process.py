"""Turning RunOptions into running processes: one, or N forked workers.

Binding happens as the starting user (root in a pod's init order), privileges are
dropped before the loop starts, and with ``--workers N`` metrics go through
prometheus-client's multiprocess mode in a per-run directory that the parent removes.
The caller must set PROMETHEUS_MULTIPROC_DIR before this module is imported.
"""

from __future__ import annotations

import logging
import os
import shutil

from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from proxy import loop, workers
from proxy.configwire import LoadedConfig, load
from proxy.conn import ConnectionHandler
from proxy.options import RunOptions
from proxy.privileges import drop_privileges
from proxy.server import ProxyServer, bind_all

log = logging.getLogger("proxy.process")
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def _serve(opts: RunOptions, config: LoadedConfig, handler: ConnectionHandler | None) -> int:
    socks = bind_all(opts)
    drop_privileges(opts.uid, opts.gid)
    registry = CollectorRegistry()
    metrics_dir = os.environ.get(MULTIPROC_ENV)
    if metrics_dir and opts.workers > 1:
        exposition = CollectorRegistry()
        MultiProcessCollector(exposition, metrics_dir)  # type: ignore[no-untyped-call]
    else:
        exposition = registry
    server = ProxyServer(
        opts, socks, registry, exposition, config.services, config.version, handler
    )
    return loop.run(server.run())


def run_proxy(opts: RunOptions, handler: ConnectionHandler | None = None) -> int:
    config = load(opts.config)
    if opts.workers == 1:
        return _serve(opts, config, handler)
    metrics_dir = os.environ[MULTIPROC_ENV]

    def parent_drops() -> None:
        drop_privileges(opts.uid, opts.gid)

    try:
        return workers.run_workers(
            opts.workers, lambda _: _serve(opts, config, handler), parent_drops
        )
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
