"""Opaque TCP relay: two pumps, one per direction, with backpressure and half-close.

Each pump reads large chunks, writes them and awaits ``drain()`` so a slow reader
slows the writer down (bounded buffers). A FIN is passed on with ``write_eof`` while
the other direction keeps flowing; a reset on one side is passed on as a reset
(SO_LINGER 0) on the other. An idle timer closes connections with no traffic.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass

CHUNK = 256 * 1024
CLOSE_LINGER = 10.0  # how long closing waits for a peer to take the last buffered bytes
REPORT_EVERY = 1 << 20  # long-lived connections show up in metrics before they close
Progress = Callable[[int, int], None]  # (received, sent) bytes since the last report
_LINGER_RST = struct.pack("ii", 1, 0)


@dataclass(frozen=True)
class RelayResult:
    received: int  # bytes from the downstream client to upstream (request direction)
    sent: int  # bytes from upstream to the downstream client (response direction)
    flags: str  # "-" clean; UR upstream reset; DC downstream reset; SI idle timeout
    unreported: tuple[int, int] = (0, 0)  # (received, sent) not yet given to ``progress``


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST (SO_LINGER 0): the peer sees a reset at once, not a hang or a FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
    writer.transport.abort()


async def close(writer: asyncio.StreamWriter, linger: float = CLOSE_LINGER) -> None:
    """FIN after the buffered bytes are flushed; a peer that stops reading gets a reset."""
    writer.close()
    try:
        async with asyncio.timeout(linger):
            await writer.wait_closed()
    except TimeoutError:
        writer.transport.abort()
    except OSError:
        pass  # already reset by the peer: nothing left to close


class _Session:
    """Shared state of one relayed connection: activity clock and the first failure."""

    def __init__(self, idle_timeout: float, progress: Progress | None) -> None:
        self.loop = asyncio.get_running_loop()
        self.progress = progress
        self.reported = [0, 0]  # received, sent
        self.idle_timeout = idle_timeout
        self.last = self.loop.time()
        self.flags = "-"
        self.timer: asyncio.TimerHandle | None = None

    def fail(self, flag: str, *writers: asyncio.StreamWriter) -> None:
        if self.flags == "-":
            self.flags = flag
        for w in writers:
            reset(w)


async def _pump(
    src: asyncio.StreamReader,
    dst: asyncio.StreamWriter,
    session: _Session,
    src_flag: str,
    dst_flag: str,
    other: asyncio.StreamWriter,
    index: int,
) -> int:
    """Copy src → dst until EOF; returns the byte count. ``other`` is src's writer.

    ``index`` is 0 for the request direction and 1 for the response direction.
    """
    total = 0
    since_report = 0
    while True:
        try:
            data = await src.read(CHUNK)
        except OSError:
            session.fail(src_flag, dst, other)
            return total
        if not data:
            break
        dst.write(data)
        total += len(data)
        session.last = session.loop.time()
        since_report += len(data)
        if since_report >= REPORT_EVERY and session.progress is not None:
            session.reported[index] += since_report
            deltas = (since_report, 0) if index == 0 else (0, since_report)
            session.progress(*deltas)
            since_report = 0
        try:
            await dst.drain()
        except OSError:
            session.fail(dst_flag, dst, other)
            return total
    if not dst.is_closing() and dst.can_write_eof():
        with contextlib.suppress(OSError):
            dst.write_eof()
    return total


def _arm_idle(session: _Session, *writers: asyncio.StreamWriter) -> None:
    def check() -> None:
        idle_for = session.loop.time() - session.last
        if idle_for >= session.idle_timeout:
            session.fail("SI", *writers)
            return
        session.timer = session.loop.call_later(session.idle_timeout - idle_for, check)

    session.timer = session.loop.call_later(session.idle_timeout, check)


async def relay(
    client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    initial: bytes,
    idle_timeout: float,
    progress: Progress | None = None,
) -> RelayResult:
    """Relay both ways until both directions are done; always closes both sides."""
    c_reader, c_writer = client
    u_reader, u_writer = upstream
    session = _Session(idle_timeout, progress)
    _arm_idle(session, c_writer, u_writer)
    try:
        if initial:
            u_writer.write(initial)
        # The response pump is a task held here until it ends (awaited below, or
        # cancelled with us); the request pump runs inline: one task per connection.
        response = asyncio.ensure_future(
            _pump(u_reader, c_writer, session, "UR", "DC", u_writer, 1)
        )
        try:
            received = await _pump(c_reader, u_writer, session, "DC", "UR", c_writer, 0)
            sent = await response
        finally:
            if not response.done():
                response.cancel()
                await asyncio.wait([response])
    finally:
        if session.timer is not None:
            session.timer.cancel()
        await close(u_writer)
        await close(c_writer)
    received += len(initial)
    unreported = (received - session.reported[0], sent - session.reported[1])
    return RelayResult(received, sent, session.flags, unreported)
