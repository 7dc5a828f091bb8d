"""The worker's connection cap at the capture listener: past it a new connection is closed
at once, unread, and counted; the connections already open keep working, and a slot
that frees up is taken by the next connection (the proxy recovers by itself)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from prometheus_client import CollectorRegistry

from proxy.observe.metrics import TcpMetrics
from proxy.policy.overload import Overload, OverloadLimits, Reason
from tests.support.listener_front import with_listener


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


async def round_trip(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes
) -> bytes:
    writer.write(data)
    return await asyncio.wait_for(reader.readexactly(len(data)), 5)


async def closed_unread(port: int) -> bool:
    """Connect and send; True when the proxy closed it without relaying anything."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"hello?")
    try:
        got = await asyncio.wait_for(reader.read(), 5)
    except ConnectionResetError:  # a close with our bytes unread may come as a reset
        got = b""
    finally:
        writer.close()
    return got == b""


def test_connections_past_the_cap_are_closed_and_the_cap_frees_up() -> None:
    told: list[Reason] = []
    overload = Overload(OverloadLimits(max_downstream_connections=2), on_reject=told.append)

    async def body(
        port: int, _: int, __: TcpMetrics, ___: CollectorRegistry, ____: list[Any]
    ) -> None:
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
        for i, (r, w) in enumerate(held):
            assert await round_trip(r, w, b"first %d" % i) == b"first %d" % i
        assert overload.connections == 2
        assert [await closed_unread(port) for _ in range(3)] == [True, True, True]
        assert told == [Reason.DOWNSTREAM_CONNECTIONS] * 3
        for i, (r, w) in enumerate(held):  # the established ones were not disturbed
            assert await round_trip(r, w, b"again %d" % i) == b"again %d" % i
        _, w0 = held.pop()
        w0.close()
        for _ in range(200):  # the slot frees when the proxy has seen the close
            if overload.connections < 2:
                break
            await asyncio.sleep(0.01)
        r, w = await asyncio.open_connection("127.0.0.1", port)
        assert await round_trip(r, w, b"after") == b"after"
        for _, writer in [*held, (r, w)]:
            writer.close()
        for _ in range(200):
            if overload.connections == 0:
                break
            await asyncio.sleep(0.01)
        assert overload.connections == 0  # every admitted connection gave its slot back

    asyncio.run(with_listener(echo, body, overload=overload))


def test_without_a_guard_nothing_is_capped() -> None:
    async def body(
        port: int, _: int, __: TcpMetrics, ___: CollectorRegistry, ____: list[Any]
    ) -> None:
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(5)]
        for i, (r, w) in enumerate(held):
            assert await round_trip(r, w, b"%d" % i) == b"%d" % i
        for _, w in held:
            with contextlib.suppress(OSError):
                w.close()

    asyncio.run(with_listener(echo, body))
