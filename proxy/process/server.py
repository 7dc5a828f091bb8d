"""The proxy process's lifecycle: bind, drop privileges, serve, drain, exit.

Sockets are bound before the loop starts (and before dropping root); the loop then
serves both capture listeners, admin and telemetry. SIGTERM closes the capture
listeners, turns /healthz/ready to 503 and gives open connections the drain timeout
to finish before the process exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry

import proxy
from proxy.admin.admin_port import AdminView, admin_endpoints
from proxy.admin.httpmini import Endpoints, serve_connection
from proxy.admin.telemetry_port import Readiness, telemetry_endpoints
from proxy.http import HttpProxy, Limits
from proxy.http.codec import CODECS
from proxy.l4.conn import Direction
from proxy.l4.inbound import InboundRouter
from proxy.l4.listener import InterceptListener, Timeouts
from proxy.mesh import (
    Mesh,
    MeshDispatcher,
    MeshForwarder,
    MeshTcpRouter,
    RequestObserver,
)
from proxy.observe import Telemetry
from proxy.observe.metrics import OverloadMetrics, TcpMetrics
from proxy.process import loop
from proxy.process.options import RunOptions, resolve_codec
from proxy.process.overload import overload_limits, worker_overload
from proxy.process.sockets import bind_listener, close_all
from proxy.process.stats import process_stats
from proxy.process.tasks import TaskKeeper
from proxy.reload import Loaded, Reloader, gcfreeze

log = logging.getLogger("proxy.process.server")
DRAIN_SIGNAL = signal.SIGUSR1  # drain without exiting (what POST /drain asks for)


@dataclass(frozen=True)
class BoundSockets:
    outbound: socket.socket
    inbound: socket.socket
    admin: socket.socket
    telemetry: socket.socket

    def all(self) -> list[socket.socket]:
        return [self.outbound, self.inbound, self.admin, self.telemetry]


def bind_all(opts: RunOptions) -> BoundSockets:
    bound: list[socket.socket] = []
    try:
        for port, host in (
            (opts.outbound_port, None),
            (opts.inbound_port, None),
            (opts.admin_port, "127.0.0.1"),  # admin never on the pod IP
            (opts.telemetry_port, None),
        ):
            bound.append(bind_listener(port, host))
    except BaseException:
        close_all(bound)
        raise
    return BoundSockets(*bound)


class ProxyServer:
    """One process's listeners and state, wired together.

    ``mesh`` is the live routing state (HTTP dispatcher and TCP router both read it);
    ``reloader`` keeps the config live (file watch, PUT /config) and feeds the mesh.
    """

    def __init__(
        self,
        opts: RunOptions,
        socks: BoundSockets,
        registry: CollectorRegistry,
        exposition: CollectorRegistry,
        reloader: Reloader,
        mesh: Mesh,
        observer: RequestObserver | None = None,
    ) -> None:
        self.opts = opts
        # The one HTTP/1 codec of this process, both sides (--http-codec, named for real).
        self.codec_name = resolve_codec(opts.http_codec)
        self.codec = CODECS[self.codec_name]
        if mesh.codec is not self.codec:  # the clusters' pools would speak another one
            raise ValueError(f"the mesh's codec is not --http-codec {opts.http_codec}")
        self.socks = socks
        self.mesh = mesh
        self.reloader = reloader
        # Metrics, access log and traces of every request and connection (proxy/observe).
        self.telemetry = Telemetry(
            registry, workload_flag=opts.workload, access_log=opts.access_log
        )
        self.observer = observer or self.telemetry.observer
        self.mesh_forwarder: MeshForwarder | None = None  # plugged into the HTTP engine
        self.http_engine: HttpProxy | None = None
        self.readiness = Readiness()
        self.conns = TaskKeeper()
        self.http_tasks = TaskKeeper()
        self.metrics = TcpMetrics(registry)
        # The worker's overload guard: the mesh's pools share it when it was made first.
        self.overload = mesh.overload or worker_overload(
            reloader.store.current.config.mesh.overload
        )
        self.overload_metrics = OverloadMetrics(registry)
        self.overload.on_reject = self.overload_metrics.rejected
        self.capture: list[asyncio.AbstractServer] = []
        timeouts = Timeouts(opts.protocol_detect_timeout, opts.connect_timeout, opts.idle_timeout)
        common: dict[str, Any] = {
            "own_ports": opts.capture_ports,
            "opaque_ports": opts.opaque_ports,
            "timeouts": timeouts,
            "metrics": self.metrics,
            "keeper": self.conns,
            "access_log": self.telemetry.tcp_access_log if opts.access_log else None,
            "overload": self.overload,
        }
        self.outbound = InterceptListener(
            Direction.OUTBOUND, MeshTcpRouter(opts.workload, mesh), **common
        )
        self.inbound = InterceptListener(Direction.INBOUND, InboundRouter(opts.workload), **common)
        if reloader.store.current.source != "none":
            self._serve_http()
        view = AdminView(_jsonable(opts), loop.LOOP_NAME, self.request_drain)
        view.http_codec = self.codec_name
        view.build = proxy.BUILD
        view.cluster_report = mesh.clusters
        view.put_config = reloader.put_handler
        view.config_status = reloader.status
        view.rules_file = opts.rules_file
        view.stats = lambda: process_stats(
            lambda: len(self.conns), mesh.pool_counts, gcfreeze.stats
        )
        view.max_body = opts.admin_max_body
        self.admin_view = view
        self.telemetry.watch_clusters(mesh.clusters)
        self.telemetry.apply_config(reloader.store.current.config)
        reloader.store.subscribe(self.apply_config)
        self.admin_endpoints = admin_endpoints(view)
        if self.observer is self.telemetry.observer:
            record: Callable[[], None] | None = self.telemetry.before_scrape
        else:  # a caller's own observer: record what it batches
            record = getattr(self.observer, "flush", None)

        def before() -> None:
            if record is not None:
                record()
            self.overload_metrics.sample(self.overload)

        self.telemetry_endpoints = telemetry_endpoints(self.readiness, exposition, before)
        self.metrics.on_closed = self.telemetry.activity

    def _serve_http(self) -> None:
        """Route HTTP by the mesh from now on (new connections; open ones keep their path).

        With no config at all the sidecar relays everything byte for byte (DESIGN.md
        §2); the first config in force, from the file or a PUT, turns L7 on.
        """
        if self.mesh_forwarder is not None:
            return
        dispatcher = MeshDispatcher(self.mesh, observer=self.observer)
        limits = Limits(
            connect_timeout=self.opts.connect_timeout,
            request_headers_timeout=self.opts.request_headers_timeout,
            stream_idle_timeout=self.opts.stream_idle_timeout,
        )
        self.mesh_forwarder = MeshForwarder(
            dispatcher, limits, codec=self.codec, overload=self.overload
        )
        engine = self.http_engine = HttpProxy(
            self.mesh_forwarder, limits, codec=self.codec, overload=self.overload
        )
        if self.readiness.draining:
            engine.drain()
        self.outbound.http_handler = self.inbound.http_handler = engine

    def apply_config(self, loaded: Loaded) -> None:
        """A new config is in force: new connections route by it, open ones keep theirs."""
        self.mesh.apply(loaded.config)  # the TCP router reads the mesh too
        self.overload.apply(overload_limits(loaded.config.mesh.overload))
        self._serve_http()
        self.telemetry.apply_config(loaded.config)

    def drain(self) -> None:
        """Stop accepting and report not-ready; open connections carry on."""
        if self.readiness.draining:
            return
        self.readiness.draining = True
        for server in self.capture:
            server.close()
        if self.http_engine is not None:
            self.http_engine.drain()  # HTTP/1 clients are told to close (Envoy's drain)
        log.info("draining: capture listeners closed, %d connections open", len(self.conns))

    def request_drain(self) -> None:
        """POST /drain: with workers, every worker must drain, not only the one asked."""
        if self.opts.workers > 1:
            os.kill(os.getppid(), DRAIN_SIGNAL)  # the parent forwards it to all workers
        else:
            self.drain()

    async def _http(self, endpoints: Endpoints, sock: socket.socket) -> asyncio.AbstractServer:
        def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.http_tasks.spawn(serve_connection(endpoints, reader, writer), name="http-endpoint")

        return await asyncio.start_server(accepted, sock=sock)

    async def run(self) -> int:
        running = asyncio.get_running_loop()
        stop = asyncio.Event()

        def terminate() -> None:
            # Drain in the signal's own callback: a response relayed while the shutdown
            # below awaits would otherwise go out without ``Connection: close``, and its
            # client would send one more request on a connection about to close.
            self.drain()
            stop.set()

        for sig in (signal.SIGTERM, signal.SIGINT):
            running.add_signal_handler(sig, terminate)
        running.add_signal_handler(DRAIN_SIGNAL, self.drain)
        await self.mesh.start()  # first DNS answers before the first request
        self.capture = [
            await self.outbound.start(self.socks.outbound),
            await self.inbound.start(self.socks.inbound),
        ]
        admin = await self._http(self.admin_endpoints, self.socks.admin)
        telemetry = await self._http(self.telemetry_endpoints, self.socks.telemetry)
        self.readiness.listening = True
        self.telemetry.start()
        self.reloader.start()
        log.info(
            "listening (%s, http codec %s, build %s): %s",
            loop.LOOP_NAME,
            self.codec_name,
            proxy.BUILD,
            _describe(self.socks),
        )
        await stop.wait()
        await self.reloader.stop()
        self.drain()
        left = await self.conns.drain(self.opts.drain_timeout)
        if left:
            log.warning("drain timeout: %d connections cut", left)
        for server in (admin, telemetry):
            server.close()
        await self.http_tasks.drain(1.0)
        await self.telemetry.close()  # queued spans and access log lines go out last
        if self.mesh_forwarder is not None:
            await self.mesh_forwarder.close()
        await self.mesh.close()
        return 0


def _jsonable(opts: RunOptions) -> dict[str, Any]:
    out = dataclasses.asdict(opts)
    out["opaque_ports"] = sorted(opts.opaque_ports)
    return out


def _describe(socks: BoundSockets) -> str:
    names = ("outbound", "inbound", "admin", "telemetry")
    parts = []
    for name, s in zip(names, socks.all(), strict=True):
        with contextlib.suppress(OSError):
            host, port = s.getsockname()[:2]
            parts.append(f"{name} [{host}]:{port}")
    return ", ".join(parts)
