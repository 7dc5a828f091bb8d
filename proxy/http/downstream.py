"""The client side of one connection: a codec in the server role, and the request body.

``Downstream`` takes the client connection over from its streams (a ``Wire`` feeds the
codec from the transport's callbacks) and turns protocol errors into the engine's typed
errors. ``RequestBody`` streams a request body from the client and keeps its
first ``retry_buffer_bytes`` so another attempt can replay them; past that the body
can no longer be replayed (Envoy/Linkerd do the same with 64 KiB).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Final

from proxy.http.codec import (
    CLOSED,
    NEED_DATA,
    PAUSED,
    Codec,
    CodecFactory,
    End,
    Event,
    ProtocolError,
    Role,
)
from proxy.http.errors import (
    DownstreamDisconnect,
    MalformedRequest,
    RequestBodyTooLarge,
    RequestHeadTooLarge,
    UnsupportedRequest,
)
from proxy.http.outbox import Outbox
from proxy.http.timer import MovableTimer
from proxy.http.wire import Wire
from proxy.policy.overload import Overload

# asyncio's and uvloop's write buffer high-water mark: set only when ours differs.
_TRANSPORT_HIGH_WATER: Final = 64 * 1024


class Downstream:
    """The client connection: a ``Wire`` feeds the codec, timeouts close it, errors become typed."""

    __slots__ = (
        "closing",
        "codec",
        "deadline",
        "head_timeout",
        "idle",
        "idle_timeout",
        "loop",
        "outbox",
        "transport",
        "watch",
        "wire",
    )

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        outbox: Outbox,
        codec: CodecFactory,
        *,
        max_head: int,
        read_size: int,
        idle_timeout: float,
        head_timeout: float | None = None,
        initial: bytes = b"",
        budget: Overload | None = None,
    ) -> None:
        self.outbox = outbox  # responses held until the loop's pass is over
        self.loop = outbox.loop
        # Closing our side makes a pending wait see the end of input.
        self.deadline = MovableTimer(self.loop, self.close)
        self.codec: Codec = codec(Role.SERVER, max_head=max_head)
        self.idle_timeout = idle_timeout
        self.head_timeout = head_timeout
        # Draining (``HttpProxy.drain``): responses say ``Connection: close``, and the
        # connection ends after the one in progress. ``idle``: waiting between requests.
        self.closing = False
        self.idle = False
        self.wire = Wire(self.codec.feed, read_size, budget)
        self.watch = ClientWatch(self)
        self.wire.on_end = self.watch.ended
        # From here on the transport calls the wire; the streams are set aside.
        self.wire.take_over(reader, writer, initial)
        self.transport: asyncio.Transport = self.wire.transport  # type: ignore[assignment]
        if read_size != _TRANSPORT_HIGH_WATER:  # one per-connection buffer bound both ways
            self.transport.set_write_buffer_limits(high=read_size)

    @property
    def eof(self) -> bool:
        """The client sends nothing more (FIN or a lost connection)."""
        return self.wire.eof

    def buffered_event(self) -> Event:
        """The next event from bytes already received (``NEED_DATA`` if none)."""
        try:
            return self.codec.next_event()
        except ProtocolError as exc:
            raise translate_protocol_error(exc) from exc

    async def next_event(self) -> Event:
        """The rest of a request head whose first bytes are here, reading as needed;
        closes after the idle timeout, or once the head has taken ``head_timeout``."""
        timeout = self.idle_timeout
        until = None if self.head_timeout is None else self.loop.time() + self.head_timeout
        while True:
            event = self.buffered_event()
            if event is not NEED_DATA:
                return event
            if until is not None:  # each read gets what is left, so trickling never resets it
                timeout = min(self.idle_timeout, max(until - self.loop.time(), 0.0))
            await self.receive(timeout)

    async def receive(self, timeout: float | None) -> None:
        """Wait until the client sent more (the wire fed it to the codec already)."""
        wire = self.wire
        if wire.eof:
            # The codec was told of the end and still needs data: nothing will come.
            raise DownstreamDisconnect("client closed the connection")
        if timeout is not None:
            self.deadline.set_in(timeout)
        try:
            await wire.wait()
        finally:
            self.deadline.clear()
        if wire.error is not None:
            raise DownstreamDisconnect(f"client connection failed: {wire.error}")

    def send_continue(self) -> None:
        if self.codec.waiting_for_continue:
            self.write(self.codec.send_continue())

    def send_soon(self, data: bytes) -> None:
        """Write ``data`` with the other writes of this loop pass (see ``Outbox``)."""
        self.outbox.send(self.transport, data)

    def write(self, data: bytes) -> None:
        """Write ``data`` now, after anything ``send_soon`` still holds; nothing once the
        client is gone (uvloop raises on a write to a closed transport, asyncio ignores
        it: either way the bytes have nowhere to go, and the disconnect is DC already)."""
        self.outbox.flush()
        if not self.wire.lost:
            self.transport.write(data)

    def close(self) -> None:
        """Close after sending what is buffered and held (a pending wait sees the end)."""
        self.outbox.flush()
        self.transport.close()

    def close_timers(self) -> None:
        self.deadline.cancel()
        self.watch.close()

    async def drain(self) -> None:
        self.outbox.flush()
        try:
            await self.wire.drain()
        except OSError as exc:
            raise DownstreamDisconnect(f"client went away: {exc}") from exc


class ClientWatch:
    """Notices a client hanging up while a slow response is awaited.

    The wire reports the end of the client's input as it happens, so watching costs no
    read and no task. A FIN counts only once the response has been awaited ``after``
    seconds (earlier, it may be a client that half-closed after its request and still
    reads): then ``on_gone`` runs (the exchange abandons the upstream request, Envoy's
    DC). A FIN that came earlier is acted on at that mark, with the one timer made for
    it. Bytes from the client after its request (a pipelined one, kept by the codec)
    end the watch: that client is not gone.
    """

    __slots__ = ("after", "down", "late", "on_gone", "received", "since")

    def __init__(self, down: Downstream) -> None:
        self.down = down
        self.on_gone: Callable[[], None] | None = None
        self.after = 0.0
        self.since = 0.0  # when the watch was armed (loop time)
        self.received = 0  # the wire's count then
        self.late: asyncio.TimerHandle | None = None  # for a FIN that came early

    def arm(self, after: float, on_gone: Callable[[], None]) -> None:
        self.on_gone = on_gone
        self.after = after
        self.since = self.down.loop.time()
        wire = self.down.wire
        self.received = wire.received
        if wire.eof:  # the FIN came with the request, before anyone watched
            self.ended()

    def disarm(self) -> None:
        self.on_gone = None
        if self.late is not None:
            self.late.cancel()
            self.late = None

    def close(self) -> None:
        self.disarm()

    def ended(self) -> None:
        """The wire's ``on_end``: the client sends nothing more."""
        if self.on_gone is None or self.down.wire.received != self.received:
            return
        due = self.since + self.after
        if self.down.loop.time() >= due:
            self._gone()
        elif self.late is None:
            self.late = self.down.loop.call_at(due, self._gone)

    def _gone(self) -> None:
        self.late = None
        on_gone, self.on_gone = self.on_gone, None
        if on_gone is not None:
            on_gone()


class RequestBody:
    """One request body: what arrived so far, kept for replay while it is small.

    ``kept`` holds the chunks an attempt must send before reading on: all of them
    while the body is replayable, else only those read before the first attempt.
    """

    __slots__ = (
        "complete",
        "down",
        "keep_limit",
        "kept",
        "kept_bytes",
        "limit",
        "received",
        "replayable",
        "started",
        "trailers",
    )

    def __init__(self, down: Downstream, *, limit: int | None, keep_limit: int) -> None:
        self.down = down
        self.limit = limit
        self.keep_limit = keep_limit
        self.kept: list[bytes | bytearray] = []
        self.kept_bytes = 0
        self.received = 0
        self.complete = False
        self.replayable = True
        self.started = False  # an attempt has begun sending the body
        self.trailers: list[tuple[bytes, bytes]] = []

    def take_buffered(self) -> None:
        """Consume the body events already parsed, without touching the socket."""
        next_event = self.down.codec.next_event
        while not self.complete:
            try:  # ``Downstream.buffered_event``, inline: once or twice per request
                event = next_event()
            except ProtocolError as exc:
                raise translate_protocol_error(exc) from exc
            if event is NEED_DATA or event is PAUSED:
                return
            self._accept(event)

    async def read(self, timeout: float | None) -> bytes | bytearray | None:
        """The next body chunk from the client, or None once the body is complete.

        A client silent for ``timeout`` seconds is disconnected.
        """
        down = self.down
        while not self.complete:
            event = down.buffered_event()
            if event is NEED_DATA:
                down.send_continue()  # the client holds the body until told to go on
                await down.receive(timeout)
                continue
            chunk = self._accept(event)
            if chunk:
                return chunk
        return None

    def _accept(self, event: Event) -> bytes | bytearray | None:
        kind = type(event)
        if kind is bytearray or kind is bytes:
            chunk: bytes | bytearray = event  # type: ignore[assignment]  # (narrowed above)
            self.received += len(chunk)
            if self.limit is not None and self.received > self.limit:
                raise RequestBodyTooLarge(f"request body exceeds {self.limit} bytes")
            if self.replayable:
                self.kept_bytes += len(chunk)
                if self.kept_bytes > self.keep_limit:
                    self.replayable = False
            if self.replayable or not self.started:
                self.kept.append(chunk)  # the first attempt still has to send it
            elif self.kept:
                self.kept.clear()
            return chunk
        if type(event) is End:
            self.complete = True
            self.trailers = event.trailers
            return None
        if event is CLOSED:
            raise DownstreamDisconnect("client closed the connection mid-request")
        raise MalformedRequest(f"unexpected {event!r} in a request body")


def translate_protocol_error(exc: ProtocolError) -> Exception:
    """A codec's verdict on the client's bytes, as the engine's typed error."""
    if exc.status == 431:
        return RequestHeadTooLarge("request line and headers are too large")
    if exc.truncated:
        return DownstreamDisconnect("client closed the connection mid-request")
    if exc.status == 501:
        return UnsupportedRequest(f"unsupported request: {exc}")
    if exc.status == 413:
        return RequestBodyTooLarge(f"request body too large: {exc}")
    return MalformedRequest(f"malformed request: {exc}")
