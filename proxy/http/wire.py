"""``Wire``: one HTTP connection's transport, read through protocol callbacks into its codec.

``data_received`` hands the bytes straight to the codec's ``feed`` (no stream buffer,
no copy, no read call) and wakes the engine only if it is waiting for data: a future is
made only when the engine has nothing left to parse. Backpressure goes both ways
through the transport: reading pauses once more than ``limit`` bytes were fed since the
engine last ran out of events, and resumes when it next waits; writes go to the
transport directly and ``drain`` waits only while the transport has paused us. A
full buffer either way is reported to the worker's ``Overload`` (``budget``) while it
stays full: the only time bytes pile up, so the hot path pays nothing for counting.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import cast

from proxy.l4.relay import Handoff
from proxy.policy.overload import Overload


class Wire(asyncio.Protocol):
    """Feeds one codec from one transport; the engine awaits ``wait`` and ``drain``."""

    __slots__ = (
        "_closed",
        "_drain",
        "_held_read",
        "_held_write",
        "_loop",
        "_mark",
        "_previous",
        "_waiter",
        "budget",
        "eof",
        "error",
        "feed",
        "limit",
        "lost",
        "on_end",
        "reading_paused",
        "received",
        "transport",
        "write_paused",
    )

    def __init__(
        self, feed: Callable[[bytes], None], limit: int, budget: Overload | None = None
    ) -> None:
        self.feed = feed  # the codec's own method: bytes in, ``b""`` at end of input
        self._loop = asyncio.get_running_loop()
        self.limit = limit  # bytes the codec may hold beyond what the engine consumed
        self.transport: asyncio.Transport | None = None
        self.received = 0  # bytes fed so far (the owner may reset it between messages)
        self._mark = 0  # ``received`` when the engine last ran out of events
        self.eof = False  # the codec was fed ``b""``: the peer sends nothing more
        self.error: Exception | None = None  # how the connection was lost, if it failed
        self.lost = False
        self.reading_paused = False
        self.write_paused = False
        # Told once when the peer finished sending or the connection was lost.
        self.on_end: Callable[[], None] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._drain: asyncio.Future[None] | None = None
        self._closed: asyncio.Future[None] | None = None
        # The stream protocol a taken-over connection had: it still learns of the loss,
        # so that whoever awaits ``StreamWriter.wait_closed`` is not left waiting.
        self._previous: asyncio.BaseProtocol | None = None
        self.budget = budget  # told of bytes held while a buffer is full
        self._held_read = self._held_write = 0  # what the budget counts for us now

    # -- taking a connection ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # always a stream transport

    def take_over(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        initial: bytes = b"",
    ) -> None:
        """Move a connection from its streams to this protocol, losing no byte.

        ``initial`` (bytes already read, e.g. by protocol detection) and whatever the
        reader still buffers are fed first, in that order; a FIN or a failure the reader
        saw already is replayed. asyncio has no public call for a StreamReader's buffer:
        ``_buffer`` and ``_eof`` are read once, synchronously after ``set_protocol``, so
        nothing can arrive in between (``proxy.l4.relay`` does the same).
        """
        transport = cast(asyncio.Transport, writer.transport)  # uvloop's is not a subclass
        self._previous = transport.get_protocol()
        transport.set_protocol(self)
        self.transport = transport
        buffered = reader._buffer  # type: ignore[attr-defined]  # see the docstring
        held = initial + bytes(buffered) if buffered else initial
        if held:
            self.data_received(held)
        if transport.is_closing():  # the stream protocol has seen the loss already
            self._previous = None
            self.lost = True
            self.error = reader.exception()
            self._end()
        elif reader._eof:  # type: ignore[attr-defined]
            self._end()
        elif not transport.is_closing() and not transport.is_reading():
            # The stream paused it when its buffer filled; the limit here is ours.
            transport.resume_reading()

    def handoff(self) -> Handoff:
        """This connection for the byte relay (after an upgrade); the codec's
        ``trailing`` bytes are the caller's to send first."""
        transport = self.transport
        assert transport is not None
        return Handoff(transport, b"", self.eof, self.lost, self.error)

    # -- the transport's callbacks ------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self.feed(data)
        self.received += len(data)
        if self.received - self._mark > self.limit and not self.reading_paused:
            self.reading_paused = True
            self.transport.pause_reading()  # type: ignore[union-attr]
            if self.budget is not None:
                self._held_read = self.received - self._mark
                self.budget.hold(self._held_read)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():  # (cancelled: its reader gave up)
                waiter.set_result(None)

    def eof_received(self) -> bool:
        self._end()
        return True  # half-closed: a response can still go out

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if exc is not None and self.error is None:
            self.error = exc
        self._end()
        self.write_paused = False
        drain, self._drain = self._drain, None
        if drain is not None and not drain.done():
            drain.set_result(None)  # the drainer sees ``lost`` and raises
        closed = self._closed
        if closed is not None and not closed.done():
            closed.set_result(None)
        previous, self._previous = self._previous, None
        if previous is not None:
            previous.connection_lost(exc)
        self._unhold()

    def pause_writing(self) -> None:
        self.write_paused = True
        budget = self.budget
        if budget is not None and self.transport is not None and not self._held_write:
            self._held_write = self.transport.get_write_buffer_size()
            budget.hold(self._held_write)

    def resume_writing(self) -> None:
        self.write_paused = False
        if self._held_write:
            held, self._held_write = self._held_write, 0
            self.budget.release(held)  # type: ignore[union-attr]  # set when held
        drain, self._drain = self._drain, None
        if drain is not None and not drain.done():
            drain.set_result(None)

    def _unhold(self) -> None:
        """The connection is gone: nothing it held is buffered any more."""
        held = self._held_read + self._held_write
        if held:
            self._held_read = self._held_write = 0
            self.budget.release(held)  # type: ignore[union-attr]  # set when held

    def _end(self) -> None:
        """No more input: the codec hears it once, a waiting engine wakes up."""
        if self.eof:
            return
        self.eof = True
        self.feed(b"")
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        on_end = self.on_end
        if on_end is not None:
            on_end()

    # -- what the engine awaits ---------------------------------------------------------

    def wait(self) -> asyncio.Future[None]:
        """A future done once more bytes were fed, or the input ended (``eof``/``error``).

        Called when the codec has no event left: everything fed was consumed, so the
        read limit starts over and a paused transport reads again. A plain future, not a
        coroutine: awaiting it costs no frame (this runs twice per proxied request).
        """
        self._mark = self.received
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            raise RuntimeError("two readers are waiting on one connection")
        waiter = self._waiter = self._loop.create_future()
        if self.eof:
            waiter.set_result(None)
        elif self.reading_paused:
            self.consumed()
        return waiter

    def consumed(self) -> None:
        """The engine used up everything fed (without waiting for more, e.g. a pooled
        connection after its response): reading resumes and the bytes held are free."""
        self._mark = self.received
        if self.reading_paused:
            self.reading_paused = False
            if not self.lost:
                self.transport.resume_reading()  # type: ignore[union-attr]
        if self._held_read:
            held, self._held_read = self._held_read, 0
            self.budget.release(held)  # type: ignore[union-attr]  # set when held

    async def drain(self) -> None:
        """Wait while the transport has paused writing; ``ConnectionResetError`` if lost."""
        if self.lost:
            raise ConnectionResetError("connection lost")
        if not self.write_paused:
            return
        drain = self._drain
        if drain is None:
            drain = self._drain = self._loop.create_future()
        await asyncio.shield(drain)  # several writers may wait; one cancelling frees none
        if self.lost:
            raise ConnectionResetError("connection lost")

    async def wait_closed(self) -> None:
        if self.lost:
            return
        if self._closed is None:
            self._closed = self._loop.create_future()
        await self._closed
