"""The listener pipeline in-process on 127.0.0.1, with the original destination passed in.

No namespaces: SO_ORIGINAL_DST is replaced by a function (STYLE rule 5), metrics go
to a fresh registry, and the upstream is a local asyncio server.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from typing import Any

from prometheus_client import CollectorRegistry

from proxy.admin.httpmini import Request
from proxy.admin.telemetry_port import Readiness, telemetry_endpoints
from proxy.l4.conn import Direction, Intercepted
from proxy.l4.listener import InterceptListener, Timeouts
from proxy.l4.origdst import Address
from proxy.l4.outbound import OutboundRouter
from proxy.observe.metrics import TcpMetrics
from proxy.process.sockets import bind_listener
from proxy.process.tasks import TaskKeeper
from tests.support.listener_front import metric, with_listener


def test_half_close_passes_fin_and_the_reply_still_flows() -> None:
    async def upstream(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        data = await r.read()  # until the client's FIN arrives through the proxy
        w.write(data[::-1] * 1000)
        await w.drain()
        w.close()

    async def body(
        port: int, _: int, __: TcpMetrics, reg: CollectorRegistry, log: list[Any]
    ) -> None:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(b"abc")
        w.write_eof()
        assert await asyncio.wait_for(r.read(), 5) == b"cba" * 1000
        w.close()
        for _ in range(100):
            if log:
                break
            await asyncio.sleep(0.01)
        assert log[0]["bytes_received"] == 3 and log[0]["bytes_sent"] == 3000
        assert metric(reg, "istio_tcp_sent_bytes_total", reporter="source") == 3000
        assert metric(reg, "istio_tcp_received_bytes_total", response_flags="-") == 3

    asyncio.run(with_listener(upstream, body))


def test_loop_guard_refuses_a_dial_to_the_listener_itself() -> None:
    async def upstream(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.close()

    async def body(
        port: int, _: int, __: TcpMetrics, reg: CollectorRegistry, ___: list[Any]
    ) -> None:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        with contextlib.suppress(ConnectionResetError):  # a reset is a close too
            assert await asyncio.wait_for(r.read(), 5) == b""
        w.close()
        assert metric(reg, "mesh_loop_guard_refusals_total", direction="outbound") == 1

    async def run() -> None:
        # The "original destination" of every connection is the proxy's own port.
        up = await asyncio.start_server(upstream, "127.0.0.1", 0)
        registry = CollectorRegistry()
        metrics = TcpMetrics(registry)
        sock = bind_listener(0, "127.0.0.1", reuseport=False)
        port = sock.getsockname()[1]
        keeper = TaskKeeper()
        listener = InterceptListener(
            Direction.OUTBOUND,
            OutboundRouter("w"),
            frozenset({port}),
            frozenset(),
            Timeouts(),
            metrics,
            keeper,
            lambda _: None,
            None,
            lambda _: Address("127.0.0.1", port, 4),
        )
        server = await listener.start(sock)
        await body(port, 0, metrics, registry, [])
        server.close()
        up.close()
        await keeper.drain(1)

    asyncio.run(run())


def test_http_goes_to_the_installed_handler_with_the_peeked_bytes() -> None:
    seen: list[tuple[Intercepted, bytes]] = []

    async def handler(
        conn: Intercepted, r: asyncio.StreamReader, w: asyncio.StreamWriter, initial: bytes
    ) -> None:
        seen.append((conn, initial))
        w.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        await w.drain()
        w.close()

    async def upstream(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.close()

    async def body(
        port: int, up: int, _: TcpMetrics, __: CollectorRegistry, ___: list[Any]
    ) -> None:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await asyncio.wait_for(r.read(), 5)).startswith(b"HTTP/1.1 204")
        w.close()
        conn, initial = seen[0]
        assert initial.startswith(b"GET / HTTP/1.1\r\n")
        assert conn.original_dst == ("127.0.0.1", up) and conn.direction is Direction.INBOUND

    asyncio.run(with_listener(upstream, body, Direction.INBOUND, handler))


def test_refused_upstream_resets_client_and_counts_uf() -> None:
    async def run() -> None:
        free = socket.socket()
        free.bind(("127.0.0.1", 0))
        dead_port = free.getsockname()[1]
        free.close()  # nothing listens there now: connect is refused
        registry = CollectorRegistry()
        sock = bind_listener(0, "127.0.0.1", reuseport=False)
        keeper = TaskKeeper()
        listener = InterceptListener(
            Direction.OUTBOUND,
            OutboundRouter("w"),
            frozenset(),
            frozenset({dead_port}),
            Timeouts(),
            TcpMetrics(registry),
            keeper,
            lambda _: None,
            None,
            lambda _: Address("127.0.0.1", dead_port, 4),
        )
        server = await listener.start(sock)
        r, w = await asyncio.open_connection("127.0.0.1", sock.getsockname()[1])
        try:
            got = await asyncio.wait_for(r.read(), 5)
        except ConnectionResetError:
            got = b"reset"
        w.close()
        assert got == b"reset"
        await keeper.drain(1)
        assert metric(registry, "istio_tcp_connections_closed_total", response_flags="UF") == 1
        assert metric(registry, "mesh_upstream_connect_failures_total", reason="refused") == 1
        server.close()

    asyncio.run(run())


def test_readiness_follows_listeners_and_drain() -> None:
    readiness = Readiness()
    endpoints = telemetry_endpoints(readiness, CollectorRegistry())
    get = Request("GET", "/healthz/ready", "", b"")

    def status() -> int:
        return asyncio.run(endpoints.dispatch(get)).status

    assert status() == 503
    readiness.listening = True
    assert status() == 200
    readiness.draining = True
    assert status() == 503
    assert asyncio.run(endpoints.dispatch(Request("POST", "/metrics", "", b""))).status == 405


def test_idle_connection_is_closed_with_si() -> None:
    async def upstream(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await r.read()  # silent until the proxy gives up on us
        w.close()

    async def run() -> None:
        up = await asyncio.start_server(upstream, "127.0.0.1", 0)
        up_port = up.sockets[0].getsockname()[1]
        registry = CollectorRegistry()
        sock = bind_listener(0, "127.0.0.1", reuseport=False)
        keeper = TaskKeeper()
        listener = InterceptListener(
            Direction.OUTBOUND, OutboundRouter("w"), frozenset(), frozenset({up_port}),
            Timeouts(0.05, 1.0, 0.3), TcpMetrics(registry), keeper, lambda _: None, None,
            lambda _: Address("127.0.0.1", up_port, 4),
        )  # fmt: skip
        server = await listener.start(sock)
        r, w = await asyncio.open_connection("127.0.0.1", sock.getsockname()[1])
        t0 = time.monotonic()
        with contextlib.suppress(ConnectionResetError):
            assert await asyncio.wait_for(r.read(), 5) == b""
        assert 0.25 < time.monotonic() - t0 < 2.0
        w.close()
        await keeper.drain(1)
        assert metric(registry, "istio_tcp_connections_closed_total", response_flags="SI") == 1
        server.close()
        up.close()

    asyncio.run(run())


def test_bytes_are_reported_while_the_connection_is_open() -> None:
    async def upstream(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await r.read()
        w.close()

    async def body(
        port: int, _: int, __: TcpMetrics, reg: CollectorRegistry, ___: list[Any]
    ) -> None:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(b"x" * (3 << 20))
        await w.drain()
        for _ in range(200):
            if metric(reg, "istio_tcp_received_bytes_total") >= 2 << 20:
                break
            await asyncio.sleep(0.01)
        # Still open, yet at least 2 MiB are on the books already.
        assert metric(reg, "istio_tcp_received_bytes_total") >= 2 << 20
        assert metric(reg, "istio_tcp_connections_closed_total") == 0
        w.write_eof()
        await asyncio.wait_for(r.read(), 5)
        w.close()
        for _ in range(200):
            if metric(reg, "istio_tcp_connections_closed_total") == 1:
                break
            await asyncio.sleep(0.01)
        assert metric(reg, "istio_tcp_received_bytes_total") == 3 << 20  # no double count

    asyncio.run(with_listener(upstream, body))
