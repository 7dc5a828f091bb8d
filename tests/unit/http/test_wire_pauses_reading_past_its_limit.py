"""The wire feeds the codec from the transport's callbacks, bounded by pause/resume.

Real connected sockets on both event loops: the peer writes, the wire's ``feed`` (here
a recording list) sees the bytes in order, reading stops once more than ``limit`` bytes
wait unconsumed, and starts again only when the engine next waits for data.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Awaitable, Callable

import pytest
import uvloop

from proxy.http.wire import Wire

LOOPS = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


_OPEN: list[tuple[Wire, socket.socket]] = []


def _run(loop: str, main: Callable[[], Awaitable[None]]) -> None:
    async def bounded() -> None:
        try:
            await asyncio.wait_for(main(), 10)
        finally:  # a failed test leaves no socket for a later test's warnings
            while _OPEN:
                wire, peer = _OPEN.pop()
                peer.close()
                if wire.transport is not None:
                    wire.transport.abort()

    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        runner.run(bounded())


def _tcp_pair() -> tuple[socket.socket, socket.socket]:
    """A connected loopback TCP pair: unlike a Unix socketpair, it can be reset."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        peer = socket.create_connection(listener.getsockname())
        ours, _ = listener.accept()
    return ours, peer


async def _connected(
    limit: int, pair: Callable[[], tuple[socket.socket, socket.socket]] = socket.socketpair
) -> tuple[Wire, list[bytes], socket.socket]:
    ours, peer = pair()
    fed: list[bytes] = []
    wire = Wire(fed.append, limit)
    await asyncio.get_running_loop().connect_accepted_socket(lambda: wire, ours)
    peer.setblocking(False)
    _OPEN.append((wire, peer))
    return wire, fed, peer


async def _until(check: Callable[[], bool]) -> None:
    while not check():
        await asyncio.sleep(0.005)


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_reading_pauses_past_the_limit_and_resumes_when_the_engine_waits(loop: str) -> None:
    async def main() -> None:
        wire, fed, peer = await _connected(limit=1000)
        assert wire.transport is not None
        peer.send(b"a" * 3000)
        await _until(lambda: sum(map(len, fed)) == 3000)
        assert wire.reading_paused and not wire.transport.is_reading()
        peer.send(b"b" * 500)
        await asyncio.sleep(0.1)
        assert b"".join(fed) == b"a" * 3000  # paused: the new bytes stay in the kernel
        await asyncio.wait_for(wire.wait(), 2)  # the engine consumed all: read again
        assert wire.transport.is_reading() and not wire.reading_paused
        await _until(lambda: sum(map(len, fed)) == 3500)
        assert b"".join(fed) == b"a" * 3000 + b"b" * 500
        wire.transport.close()
        peer.close()

    _run(loop, main)


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_a_waiting_engine_wakes_on_data_and_on_the_end_which_the_codec_hears_once(
    loop: str,
) -> None:
    async def main() -> None:
        wire, fed, peer = await _connected(limit=1 << 16)
        waiting = asyncio.ensure_future(wire.wait())
        await asyncio.sleep(0.05)
        assert not waiting.done()  # nothing arrived: the engine sleeps
        peer.send(b"GET")
        await asyncio.wait_for(waiting, 2)
        assert fed == [b"GET"] and not wire.eof
        first = asyncio.ensure_future(wire.wait())
        await asyncio.sleep(0)
        with pytest.raises(RuntimeError):  # one reader per connection
            await wire.wait()
        peer.shutdown(socket.SHUT_WR)
        await asyncio.wait_for(first, 2)
        assert wire.eof and fed[-1] == b""
        peer.close()
        wire.transport.close()  # type: ignore[union-attr]
        await asyncio.wait_for(wire.wait_closed(), 2)
        assert wire.lost and fed.count(b"") == 1  # FIN and loss: one end of input
        await asyncio.wait_for(wire.wait(), 2)  # after the end, waiting returns at once

    _run(loop, main)


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_drain_waits_only_while_writing_is_paused(loop: str) -> None:
    async def main() -> None:
        # TCP, not a Unix pair: closing a Unix peer only ends its input (no reset), and
        # the wire keeps a half-open connection for a response still going out.
        wire, _, peer = await _connected(limit=1 << 16, pair=_tcp_pair)
        transport = wire.transport
        assert transport is not None
        transport.set_write_buffer_limits(high=4096)
        await asyncio.wait_for(wire.drain(), 1)  # nothing buffered: no wait
        while not wire.write_paused:  # the peer does not read: the kernel fills up
            transport.write(b"x" * 65536)
            await asyncio.sleep(0)
        draining = asyncio.ensure_future(wire.drain())
        await asyncio.sleep(0.05)
        assert not draining.done()
        received = 0
        while not draining.done():
            try:
                received += len(peer.recv(1 << 20))
            except BlockingIOError:
                await asyncio.sleep(0.001)
        await draining
        assert received > 0 and not wire.write_paused
        # A reset (linger 0), whatever is left unread: a FIN alone would leave the wire
        # half-open (``eof_received`` keeps it, for a response still going out).
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        peer.close()
        await asyncio.wait_for(wire.wait_closed(), 2)
        with pytest.raises(ConnectionResetError):
            await wire.drain()

    _run(loop, main)
