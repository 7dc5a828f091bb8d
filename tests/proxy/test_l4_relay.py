"""The protocol-based opaque relay: bytes the streams held before the relay took over,
large transfers both ways under backpressure, and a reset passed on as a reset."""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import Any

from prometheus_client import CollectorRegistry

from proxy.observe.metrics import TcpMetrics
from tests.proxy.test_l4_listener import _value, _with_proxy

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
        assert _value(reg, "istio_tcp_sent_bytes_total") == SIZE + len(BANNER)
        assert _value(reg, "istio_tcp_received_bytes_total") == SIZE

    asyncio.run(_with_proxy(upstream, body))


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
        assert _value(reg, "istio_tcp_connections_closed_total", response_flags="UR") == 1

    asyncio.run(_with_proxy(upstream, body))
