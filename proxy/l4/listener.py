"""One capture listener's pipeline, from accept to the end of the relay.

accept → SO_ORIGINAL_DST → loop guard → route → protocol detection (skipped for
declared opaque ports and declared HTTP services) → the HTTP handler if one is
installed and the client speaks HTTP/1, else the opaque relay. Every failure ends
this connection only, is counted and logged; nothing escapes to the accept loop.
Past the worker's connection cap (``Overload``, shared by both capture listeners) a
new connection is closed as soon as it is accepted, unread, as Envoy's listener
connection limit does; the event loop's accept refuses cleanly when descriptors run out.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from proxy.core.errors import DialError, LoopDetected, OriginalDstError, ProxyError
from proxy.core.flags import Flag
from proxy.l4 import detect, origdst, relay
from proxy.l4.conn import ConnectionHandler, Direction, Intercepted
from proxy.l4.dial import STREAM_LIMIT, dial
from proxy.l4.route import Route, Router
from proxy.observe.logline import tcp_entry
from proxy.observe.metrics import TcpMetrics
from proxy.policy.overload import Overload
from proxy.process.sockets import BACKLOG
from proxy.process.tasks import TaskKeeper

log = logging.getLogger("proxy.l4.listener")

AccessLog = Callable[[dict[str, Any]], None]
OriginalDst = Callable[[Any], origdst.Address]


@dataclass(frozen=True)
class Timeouts:
    detect: float = detect.DEFAULT_DETECT_TIMEOUT
    connect: float = 10.0  # Istio's cluster connect_timeout
    idle: float = 3600.0  # Istio's TCP idle_timeout (1 h)


@dataclass
class InterceptListener:
    direction: Direction
    router: Router
    own_ports: frozenset[int]  # capture ports: an original destination here is a loop
    opaque_ports: frozenset[int]
    timeouts: Timeouts
    metrics: TcpMetrics
    keeper: TaskKeeper
    access_log: AccessLog | None  # None: no access log (and no cost building entries)
    http_handler: ConnectionHandler | None = None
    original_dst: OriginalDst = origdst.original_dst
    overload: Overload | None = None  # the worker's connection cap (None: no cap)

    async def start(self, sock: Any) -> asyncio.AbstractServer:
        # start_server listens again, by default with a backlog of 100: a burst of new
        # connections past that overflowed the accept queue (the kernel drops their
        # handshakes; clients hang in retries) instead of reaching the connection cap.
        return await asyncio.start_server(
            self._accepted, sock=sock, limit=STREAM_LIMIT, backlog=BACKLOG
        )

    def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        overload = self.overload
        if overload is not None and not overload.admit_connection():
            # Unread and unanswered: the client sees the connection closed at once (the
            # protocol is not known yet, so there is nothing else to say).
            writer.transport.abort()
            return
        self.keeper.spawn(
            self._guarded(reader, writer, overload), name=f"{self.direction.value}-conn"
        )

    async def _guarded(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        overload: Overload | None = None,
    ) -> None:
        """A broken peer ends its own connection, never the proxy."""
        try:
            await self.serve(reader, writer)
        except (OSError, ProxyError) as e:
            log.info("%s: connection ended: %s", self.direction.value, e)
            relay.reset(writer)
        finally:
            if not writer.is_closing():
                writer.transport.abort()
            if overload is not None:
                overload.connection_closed()

    def _intercepted(self, writer: asyncio.StreamWriter) -> Intercepted:
        sock = writer.get_extra_info("socket")
        peer_host, _ = origdst.unmap(writer.get_extra_info("peername")[0])
        dst = self.original_dst(sock)
        local_host, _ = origdst.unmap(writer.get_extra_info("sockname")[0])
        local_port = writer.get_extra_info("sockname")[1]
        if dst.port in self.own_ports or (dst.host, dst.port) == (local_host, local_port):
            raise LoopDetected(f"original destination {dst.host}:{dst.port} is this proxy")
        peer = (peer_host, writer.get_extra_info("peername")[1])
        return Intercepted(self.direction, peer, dst.pair, dst.family)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            conn = self._intercepted(writer)
        except (LoopDetected, OriginalDstError) as e:
            # No redirect happened (or it pointed back at us): serving it would make an
            # open proxy or an endless loop, so close at once.
            self.metrics.loop_refusals.labels(self.direction.value).inc()
            log.warning("%s: refused: %s", self.direction.value, e)
            relay.reset(writer)
            return
        route = self.router.route(conn)
        if route.http and self.http_handler is not None:
            protocol, initial = detect.Protocol.HTTP1, b""  # declared: nothing to sniff
            self.metrics.detected(self.direction.value, "declared")
        elif route.opaque or conn.original_dst[1] in self.opaque_ports:
            protocol, initial = detect.Protocol.OPAQUE, b""
            self.metrics.detected(self.direction.value, "declared")
        else:
            protocol, initial = await detect.sniff(reader, self.timeouts.detect)
            result = "http" if protocol is detect.Protocol.HTTP1 else "opaque"
            self.metrics.detected(self.direction.value, result if initial else "timeout")
        if protocol is detect.Protocol.HTTP1 and self.http_handler is not None:
            await self.http_handler(conn, reader, writer, initial)
            return
        await self._relay(conn, route, reader, writer, initial)

    async def _relay(
        self,
        conn: Intercepted,
        route: Route,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        initial: bytes,
    ) -> None:
        started = time.monotonic()
        self.metrics.connection_opened(route.labels)
        try:
            upstream = await dial(
                route.host, route.port, route.family, self.timeouts.connect, route.source
            )
        except DialError as e:
            self.metrics.connect_failures.labels(self.direction.value, e.reason).inc()
            self.metrics.add_bytes(route.labels, e.flag, len(initial), 0)
            self.metrics.connection_closed(route.labels, e.flag)
            relay.reset(writer)
            self._log(conn, route, started, len(initial), 0, e.flag, str(e))
            return

        def progress(received: int, sent: int) -> None:
            self.metrics.add_bytes(route.labels, Flag.NONE, received, sent)

        result = await relay.relay(
            (reader, writer), upstream, initial, self.timeouts.idle, progress
        )
        self.metrics.add_bytes(route.labels, result.flag, *result.unreported)
        self.metrics.connection_closed(route.labels, result.flag)
        self._log(conn, route, started, result.received, result.sent, result.flag, None)

    def _log(
        self,
        conn: Intercepted,
        route: Route,
        started: float,
        received: int,
        sent: int,
        flag: Flag,
        error: str | None,
    ) -> None:
        if self.access_log is None:
            return
        self.access_log(
            tcp_entry(
                conn,
                (route.host, route.port),
                route.labels.destination_service_name,
                time.monotonic() - started,
                received,
                sent,
                flag,
                error,
                os.getpid(),
            )
        )
