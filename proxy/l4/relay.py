"""The one byte relay: two transports wired to each other with protocol callbacks.

Once a connection is relayed its streams (or the HTTP engine's protocol, handed over
as a ``Handoff``) are set aside: each transport gets a ``_Side``
protocol whose ``data_received`` writes straight into the other transport, so a chunk
costs one read and one write and no task wake-up. Backpressure is the transports' own:
a peer whose write buffer passes the high-water mark pauses reading on this side until
it drains. A FIN is passed on with ``write_eof`` while the other direction keeps
flowing; a reset on one side is passed on as a reset (SO_LINGER 0) on the other. An
idle timer closes connections with no traffic. ``relay`` serves opaque TCP (the L4
listener) and the HTTP engine's tunnel after a 101 Upgrade alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, cast

from proxy.core.flags import Flag

CLOSE_LINGER = 10.0  # how long closing waits for a peer to take the last buffered bytes
REPORT_EVERY = 1 << 20  # long-lived connections show up in metrics before they close
Progress = Callable[[int, int], None]  # (received, sent) bytes since the last report
_LINGER_RST = struct.pack("ii", 1, 0)


@dataclass(frozen=True)
class RelayResult:
    received: int  # bytes from the downstream client to upstream (request direction)
    sent: int  # bytes from upstream to the downstream client (response direction)
    flag: Flag  # NONE clean; UPSTREAM_RESET, DOWNSTREAM_DISCONNECT, STREAM_IDLE_TIMEOUT
    unreported: tuple[int, int] = (0, 0)  # (received, sent) not yet given to ``progress``


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST (SO_LINGER 0): the peer sees a reset at once, not a hang or a FIN."""
    _reset_transport(writer.transport)


def _reset_transport(transport: asyncio.WriteTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
    transport.abort()


class _Session:
    """Shared state of one relayed connection: activity clock, the first failure, the end."""

    def __init__(self, idle_timeout: float | None, progress: Progress | None) -> None:
        self.loop = asyncio.get_running_loop()
        self.progress = progress
        self.idle_timeout = idle_timeout
        self.last = self.loop.time()
        self.flag = Flag.NONE
        self.timer: asyncio.TimerHandle | None = None
        self.open_directions = 2  # each ends at its source's FIN or at a lost connection
        self.finished: asyncio.Future[None] = self.loop.create_future()
        self.sides: tuple[_Side, _Side] | None = None

    def fail(self, flag: Flag) -> None:
        if self.flag is Flag.NONE:
            self.flag = flag
        assert self.sides is not None
        for side in self.sides:
            side.reset()

    def direction_done(self) -> None:
        self.open_directions -= 1
        if self.open_directions <= 0 and not self.finished.done():
            self.finished.set_result(None)


class _Side(asyncio.Protocol):
    """One relayed connection; what it receives goes to ``peer``'s transport.

    ``index`` is 0 for the client side (its bytes are the request direction) and 1 for
    the upstream side; ``flag`` is how a failure of this connection is reported.
    """

    def __init__(
        self, session: _Session, transport: asyncio.Transport, index: int, flag: Flag
    ) -> None:
        self.session = session
        self.transport = transport
        self.index = index
        self.flag = flag
        self.peer: _Side | None = None
        self.total = 0  # bytes received on this side and written to the peer
        self.reported = 0
        self.eof = False  # no more input on this side: its direction is done
        self.seen_eof = False  # the stream had read a FIN before the relay took over
        self.lost = False
        self.closed: asyncio.Future[None] = session.loop.create_future()
        # The stream's protocol, told when the connection is lost so that the stream's
        # owner sees the end too (``StreamWriter.wait_closed`` would wait forever).
        self.stream_protocol: asyncio.BaseProtocol | None = None

    def data_received(self, data: bytes) -> None:
        assert self.peer is not None
        if self.peer.lost:
            return  # nowhere to deliver it; the relay is closing both sides
        self.peer.transport.write(data)
        self.total += len(data)
        session = self.session
        session.last = session.loop.time()
        if session.progress is not None and self.total - self.reported >= REPORT_EVERY:
            delta = self.total - self.reported
            self.reported = self.total
            session.progress(*((delta, 0) if self.index == 0 else (0, delta)))

    def eof_received(self) -> bool:
        assert self.peer is not None
        self._end_of_input()
        peer = self.peer.transport
        if not peer.is_closing() and peer.can_write_eof():
            with contextlib.suppress(OSError):
                peer.write_eof()  # sent once the peer's buffered bytes are out
        return True  # keep the transport open: the other direction may still flow

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if not self.closed.done():
            self.closed.set_result(None)
        self._end_of_input()
        if exc is not None:
            self.session.fail(self.flag)
        assert self.peer is not None
        self.peer._end_of_input()  # nothing the peer sends can be delivered here any more
        stream_protocol, self.stream_protocol = self.stream_protocol, None
        if stream_protocol is not None:
            stream_protocol.connection_lost(exc)

    # The peer cannot take more: stop reading here until it has drained.
    def pause_writing(self) -> None:
        assert self.peer is not None
        self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        assert self.peer is not None
        self.peer.transport.resume_reading()

    def _end_of_input(self) -> None:
        if not self.eof:
            self.eof = True
            self.session.direction_done()

    def reset(self) -> None:
        if not self.lost:
            _reset_transport(self.transport)

    async def close(self, linger: float) -> None:
        """FIN after the buffered bytes are flushed; a peer that stops reading gets a reset."""
        if self.lost:
            return
        self.transport.close()
        try:
            async with asyncio.timeout(linger):
                await self.closed
        except TimeoutError:
            self.transport.abort()


class Handoff(NamedTuple):
    """A connection handed to the relay: what its reader already held, and how it ended.

    ``held`` goes out first; ``eof``: the peer had sent its FIN; ``lost``: the
    connection was gone already, ``error`` saying how.
    """

    transport: asyncio.Transport
    held: bytes = b""
    eof: bool = False
    lost: bool = False
    error: BaseException | None = None


def from_stream(stream: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> Handoff:
    """A stream's connection as a ``Handoff``.

    asyncio has no public call that gives a StreamReader's buffer back, so its
    ``_buffer`` and ``_eof`` are read here once, in the same synchronous step as the
    ``set_protocol`` that follows (``relay_handoffs``), so no byte comes in between; the
    stream is not used again, but learns when the connection is lost.
    """
    reader, writer = stream
    transport = cast(asyncio.Transport, writer.transport)
    held = bytes(reader._buffer)  # type: ignore[attr-defined]  # see the docstring
    eof: bool = reader._eof  # type: ignore[attr-defined]
    return Handoff(transport, held, eof, transport.is_closing(), reader.exception())


def _take_over(handoff: Handoff, side: _Side) -> None:
    """Hand the connection from its previous protocol to ``side``."""
    transport = side.transport
    side.stream_protocol = transport.get_protocol()
    transport.set_protocol(side)
    side.seen_eof = handoff.eof
    if not side.seen_eof and not transport.is_closing() and not transport.is_reading():
        transport.resume_reading()  # the stream paused it when its buffer filled up


def _replay(side: _Side, handoff: Handoff) -> None:
    """What happened on the connection before ``side`` took it over."""
    if handoff.held:
        side.data_received(handoff.held)
    if handoff.lost or side.transport.is_closing():
        error = handoff.error
        side.connection_lost(error if isinstance(error, Exception) else None)
    elif side.seen_eof:
        side.eof_received()


def _arm_idle(session: _Session) -> None:
    if session.idle_timeout is None:
        return  # the caller keeps no idle limit (an upgraded HTTP connection)
    idle_timeout = session.idle_timeout

    def check() -> None:
        idle_for = session.loop.time() - session.last
        if idle_for >= idle_timeout:
            session.fail(Flag.STREAM_IDLE_TIMEOUT)
            return
        session.timer = session.loop.call_later(idle_timeout - idle_for, check)

    session.timer = session.loop.call_later(idle_timeout, check)


async def relay(
    client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    initial: bytes = b"",
    idle_timeout: float | None = None,
    progress: Progress | None = None,
) -> RelayResult:
    """Relay both ways until both directions are done; always closes both sides.

    Bytes the client's and the upstream's readers already hold go out first, after
    ``initial`` (client bytes read before the relay, e.g. while sniffing the protocol),
    and count in the totals. ``idle_timeout`` None: no idle limit. ``progress`` is
    called every ``REPORT_EVERY`` bytes of one direction.
    """
    down = from_stream(client)
    if initial:
        down = down._replace(held=initial + down.held)
    return await relay_handoffs(down, from_stream(upstream), idle_timeout, progress)


async def relay_handoffs(
    client: Handoff,
    upstream: Handoff,
    idle_timeout: float | None = None,
    progress: Progress | None = None,
) -> RelayResult:
    """``relay`` for connections whose protocol is not a stream (the HTTP engine's)."""
    session = _Session(idle_timeout, progress)
    down = _Side(session, client.transport, 0, Flag.DOWNSTREAM_DISCONNECT)
    up = _Side(session, upstream.transport, 1, Flag.UPSTREAM_RESET)
    down.peer, up.peer = up, down
    session.sides = (down, up)
    _arm_idle(session)
    try:
        _take_over(client, down)
        _take_over(upstream, up)
        _replay(down, client)
        _replay(up, upstream)
        await session.finished
    finally:
        if session.timer is not None:
            session.timer.cancel()
        await up.close(CLOSE_LINGER)
        await down.close(CLOSE_LINGER)
    received, sent = down.total, up.total
    unreported = (received - down.reported, sent - up.reported)
    return RelayResult(received, sent, session.flag, unreported)
