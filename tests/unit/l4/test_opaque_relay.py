"""The one byte relay (L4, and the HTTP tunnel after 101): bytes the streams held before
the relay took over, large transfers both ways under backpressure, and a reset passed on
as a reset."""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import Any

from prometheus_client import CollectorRegistry

from proxy.core.flags import Flag
from proxy.l4.relay import relay
from proxy.observe.metrics import TcpMetrics
from tests.support.listener_front import metric, with_listener

BANNER = b"220 banner from the server\r\n"
SIZE = 8 << 20  # 8 MiB: far past every transport's high-water mark


def test_server_first_banner_and_8_mib_echo_arrive_intact() -> None:
    async def upstream(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(BANNER)  # before the client says anything: server-first protocol
        while chunk := await r.read(1 << 16):
            w.write(chunk)
            await w.drain()
        w.close()

    async def body(
        port: int, _: int, __: TcpMetrics, reg: CollectorRegistry, log: list[Any]
    ) -> None:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(r.readexactly(len(BANNER)), 5) == BANNER
        payload = bytes(range(256)) * (SIZE // 256)
        w.write(payload)  # all of it at once: the proxy must pause and resume reading
        w.write_eof()
        echoed = await asyncio.wait_for(r.read(), 20)
        assert echoed == payload
        w.close()
        for _ in range(200):
            if log:
                break
            await asyncio.sleep(0.01)
        assert log[0]["bytes_received"] == SIZE
        assert log[0]["bytes_sent"] == SIZE + len(BANNER)
        assert log[0]["response_flags"] == "-"
        assert metric(reg, "istio_tcp_sent_bytes_total") == SIZE + len(BANNER)
        assert metric(reg, "istio_tcp_received_bytes_total") == SIZE

    asyncio.run(with_listener(upstream, body))


def test_an_upstream_reset_reaches_the_client_as_a_reset_and_counts_ur() -> None:
    async def upstream(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await r.readexactly(5)
        w.write(b"partial")
        await w.drain()
        sock = w.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        w.transport.abort()  # RST

    async def body(
        port: int, _: int, __: TcpMetrics, reg: CollectorRegistry, log: list[Any]
    ) -> None:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(b"hello")
        got = b""
        reset = False
        try:
            while chunk := await asyncio.wait_for(r.read(1024), 5):
                got += chunk
        except ConnectionResetError:
            reset = True
        assert reset, f"the client saw a clean end after {got!r}"
        w.close()
        for _ in range(200):
            if log:
                break
            await asyncio.sleep(0.01)
        assert log[0]["response_flags"] == "UR"
        assert metric(reg, "istio_tcp_connections_closed_total", response_flags="UR") == 1

    asyncio.run(with_listener(upstream, body))


def test_streams_handed_over_send_what_their_readers_held_and_see_the_end() -> None:
    """The HTTP engine's tunnel after 101: two stream pairs, bytes already buffered."""

    async def run() -> None:
        accepted: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]]
        accepted = asyncio.Queue()

        async def on_accept(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            await accepted.put((r, w))

        server = await asyncio.start_server(on_accept, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = await asyncio.open_connection("127.0.0.1", port)  # the app's client
        proxy_down = await accepted.get()
        proxy_up = await asyncio.open_connection("127.0.0.1", port)  # towards upstream
        upstream = await accepted.get()
        client[1].write(b"early from the client;")
        upstream[1].write(b"early from upstream;")
        await asyncio.sleep(0.05)  # both land in the proxy's StreamReaders, unread
        relayed = asyncio.create_task(relay(proxy_down, proxy_up))
        assert await upstream[0].readexactly(22) == b"early from the client;"
        assert await client[0].readexactly(20) == b"early from upstream;"
        client[1].write(b"more")
        assert await upstream[0].readexactly(4) == b"more"
        client[1].write_eof()
        upstream[1].write_eof()
        assert await asyncio.wait_for(client[0].read(), 5) == b""
        assert await asyncio.wait_for(upstream[0].read(), 5) == b""
        result = await asyncio.wait_for(relayed, 5)
        assert (result.received, result.sent, result.flag) == (26, 20, Flag.NONE)
        # The streams' owners (the HTTP server's close, the pool) wait for the end.
        await asyncio.wait_for(proxy_down[1].wait_closed(), 1)
        await asyncio.wait_for(proxy_up[1].wait_closed(), 1)
        for _, writer in (client, upstream):
            writer.close()
        server.close()
        await server.wait_closed()

    asyncio.run(run())
