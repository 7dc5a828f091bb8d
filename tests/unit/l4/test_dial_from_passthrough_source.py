"""Dialling upstream from a chosen source: the L4 inbound path and the HTTP pool's opener.

Real sockets on loopback: 127.0.0.6 is local on any Linux, so the source address the
app sees can be checked without a namespace.
"""

from __future__ import annotations

import asyncio
import socket

import pytest

from proxy.core.errors import UpstreamConnectError
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
    peer = asyncio.run(_peer_seen_by_app(passthrough_opener(1.0)))
    assert peer == PASSTHROUGH_SOURCE4 == "127.0.0.6"


def test_dial_binds_the_source_it_is_given() -> None:
    async def open_(host: str, port: int) -> object:
        return await dial(host, port, 4, 1.0, "127.0.0.7")

    assert asyncio.run(_peer_seen_by_app(open_)) == "127.0.0.7"


def test_a_refusal_is_an_upstream_connect_error_for_l4_and_stays_a_refusal_for_the_pool() -> None:
    port = _free_port()
    with pytest.raises(UpstreamConnectError) as l4:
        asyncio.run(dial("127.0.0.1", port, 4, 1.0, PASSTHROUGH_SOURCE4))
    assert l4.value.reason == "refused"
    with pytest.raises(ConnectionRefusedError):
        asyncio.run(passthrough_opener(1.0)("127.0.0.1", port))
