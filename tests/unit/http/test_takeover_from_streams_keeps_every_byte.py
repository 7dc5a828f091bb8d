"""The engine takes a client connection over from the listener's streams, losing nothing.

The listener has read some bytes itself (protocol detection: ``initial``) and its
StreamReader may hold more; after ``Wire.take_over`` the codec must see all of them,
then what arrives later, in order, and a FIN the stream saw already. Whoever awaits
the old ``StreamWriter.wait_closed`` still learns of the end. Both event loops.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
import uvloop

from proxy.http.wire import Wire

LOOPS = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def _run(loop: str, main: Callable[[], Awaitable[None]]) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(main(), 10)

    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        runner.run(bounded())


async def _served(
    handler: Handler,
) -> tuple[asyncio.AbstractServer, asyncio.StreamReader, asyncio.StreamWriter]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    return server, reader, writer


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_initial_then_the_readers_buffer_then_new_bytes_in_order(loop: str) -> None:
    async def main() -> None:
        fed: list[bytes] = []
        wire = Wire(fed.append, 1 << 16)
        taken = asyncio.Event()
        stream_closed = asyncio.Event()

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            initial = await reader.readexactly(3)  # what detection consumed
            await asyncio.sleep(0.05)  # the rest of the first burst waits in the reader
            wire.take_over(reader, writer, initial)
            taken.set()
            await writer.wait_closed()  # the old stream still hears of the end
            stream_closed.set()

        server, reader, client = await _served(handler)
        client.write(b"0123456789")
        await taken.wait()
        assert b"".join(fed) == b"0123456789"
        client.write(b"abc")
        while b"".join(fed) != b"0123456789abc":
            await asyncio.sleep(0.005)
        assert wire.transport is not None
        wire.transport.write(b"pong")  # the transport is ours to write to
        assert await asyncio.wait_for(reader.readexactly(4), 2) == b"pong"
        client.close()
        await asyncio.wait_for(wire.wait(), 2)
        assert wire.eof and fed[-1] == b"" and not wire.lost  # half-closed: ours to close
        wire.transport.close()
        await asyncio.wait_for(stream_closed.wait(), 2)
        assert wire.lost
        server.close()
        await server.wait_closed()

    _run(loop, main)


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_a_fin_the_stream_saw_before_the_takeover_reaches_the_codec(loop: str) -> None:
    async def main() -> None:
        fed: list[bytes] = []
        wire = Wire(fed.append, 1 << 16)
        taken = asyncio.Event()
        at_takeover: list[bytes] = []

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await asyncio.sleep(0.1)  # the request and the FIN arrive while the stream owns it
            wire.take_over(reader, writer, b"")
            at_takeover.extend(fed)  # before the loop runs any callback of ours
            taken.set()
            writer.transport.write(b"still open for the answer")
            writer.transport.close()

        server, reader, client = await _served(handler)
        client.write(b"GET / HTTP/1.1\r\n\r\n")
        client.write_eof()
        await asyncio.wait_for(taken.wait(), 2)
        assert at_takeover == [b"GET / HTTP/1.1\r\n\r\n", b""]
        assert fed == at_takeover and wire.eof
        assert await asyncio.wait_for(reader.read(), 2) == b"still open for the answer"
        client.close()
        server.close()
        await server.wait_closed()

    _run(loop, main)
