"""Dialling upstream from a chosen source: the L4 inbound path and the HTTP pool's opener.

Real sockets on loopback: 127.0.0.6 is local on any Linux, so the source address the
app sees can be checked without a namespace.
"""

from __future__ import annotations

import asyncio
import socket

import pytest

from proxy.core.errors import DialError, connect_reason
from proxy.http.errors import UpstreamConnectError
from proxy.http.pool import UpstreamPool
from proxy.l4.dial import PASSTHROUGH_SOURCE4, dial, passthrough_opener


async def _peer_seen_by_app(open_: object) -> str:
    seen: asyncio.Queue[str] = asyncio.Queue()

    async def app(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await seen.put(w.get_extra_info("peername")[0])
        w.close()

    server = await asyncio.start_server(app, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        _, writer = await open_("127.0.0.1", port)  # type: ignore[operator]
        peer = await asyncio.wait_for(seen.get(), 5)
        writer.close()
        return peer
    finally:
        server.close()
        await server.wait_closed()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again: nothing listens there


def test_the_pool_opener_connects_from_the_passthrough_source() -> None:
    async def open_(host: str, port: int) -> object:
        sock = await passthrough_opener(1.0)(host, port)  # the pool wraps the socket itself
        return await asyncio.open_connection(sock=sock)

    peer = asyncio.run(_peer_seen_by_app(open_))
    assert peer == PASSTHROUGH_SOURCE4 == "127.0.0.6"


def test_dial_binds_the_source_it_is_given() -> None:
    async def open_(host: str, port: int) -> object:
        return await dial(host, port, 4, 1.0, "127.0.0.7")

    assert asyncio.run(_peer_seen_by_app(open_)) == "127.0.0.7"


def test_a_refusal_is_one_reason_for_l4_and_for_the_http_pool() -> None:
    port = _free_port()
    with pytest.raises(DialError) as l4:
        asyncio.run(dial("127.0.0.1", port, 4, 1.0, PASSTHROUGH_SOURCE4))
    assert l4.value.reason == "refused"

    async def through_the_pool() -> None:
        pool = UpstreamPool(opener=passthrough_opener(1.0))
        try:
            await pool.acquire(("127.0.0.1", port), connect_timeout=1.0)
        finally:
            await pool.close()

    with pytest.raises(UpstreamConnectError) as http:
        asyncio.run(through_the_pool())
    # The dial's error stays chained for the traceback: as the cause in the source, as
    # the context in the mypyc build (which compiles ``raise ... from`` as plain raise).
    chained = http.value.__cause__ or http.value.__context__
    assert http.value.reason == "refused" and isinstance(chained, DialError)


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (ConnectionRefusedError(111, "refused"), "refused"),
        (TimeoutError(), "timeout"),
        (OSError(101, "Network is unreachable"), "unreachable"),
        (OSError(113, "No route to host"), "unreachable"),
        (ConnectionResetError(104, "reset"), "econnreset"),
        (DialError("x", "timeout"), "timeout"),
    ],
)
def test_connect_reasons_are_the_metric_words(exc: BaseException, reason: str) -> None:
    assert connect_reason(exc) == reason
