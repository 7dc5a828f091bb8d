"""The client side of one connection: a codec in the server role, and the request body.

``Downstream`` turns socket reads into codec events and protocol errors into the
engine's typed errors. ``RequestBody`` streams a request body from the client and keeps its
first ``retry_buffer_bytes`` so another attempt can replay them; past that the body
can no longer be replayed (Envoy/Linkerd do the same with 64 KiB).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

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


class Downstream:
    """The client connection: reads feed the codec, timeouts close it, errors become typed."""

    __slots__ = (
        "closing",
        "codec",
        "deadline",
        "eof",
        "head_timeout",
        "idle",
        "idle_timeout",
        "loop",
        "outbox",
        "read_size",
        "reader",
        "watch",
        "writer",
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
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.outbox = outbox  # responses held until the loop's pass is over
        self.loop = outbox.loop
        # Closing our side makes a pending read return end-of-file.
        self.deadline = MovableTimer(self.loop, self.close)
        self.watch = ClientWatch(self)
        self.codec: Codec = codec(Role.SERVER, max_head=max_head)
        self.read_size = read_size
        self.idle_timeout = idle_timeout
        self.head_timeout = head_timeout
        self.eof = False
        # Draining (``HttpProxy.drain``): responses say ``Connection: close``, and the
        # connection ends after the one in progress. ``idle``: waiting between requests.
        self.closing = False
        self.idle = False

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
        if self.watch.stopping is not None:
            await self.watch.settle()
        if timeout is not None:
            self.deadline.set_in(timeout)
        try:
            data = await self.reader.read(self.read_size)
        except OSError as exc:
            raise DownstreamDisconnect(f"client connection failed: {exc}") from exc
        finally:
            self.deadline.clear()
        if not data:
            self.eof = True
        self.codec.feed(data)

    def send_continue(self) -> None:
        if self.codec.waiting_for_continue:
            self.write(self.codec.send_continue())

    def send_soon(self, data: bytes) -> None:
        """Write ``data`` with the other writes of this loop pass (see ``Outbox``)."""
        self.outbox.send(self.writer.transport, data)

    def write(self, data: bytes) -> None:
        """Write ``data`` now, after anything ``send_soon`` still holds."""
        self.outbox.flush()
        self.writer.write(data)

    def close(self) -> None:
        """Close after sending what is buffered and held (a pending read sees EOF)."""
        self.outbox.flush()
        self.writer.transport.close()

    def close_timers(self) -> None:
        self.deadline.cancel()
        self.watch.close()

    async def drain(self) -> None:
        self.outbox.flush()
        try:
            await self.writer.drain()
        except OSError as exc:
            raise DownstreamDisconnect(f"client went away: {exc}") from exc


class ClientWatch:
    """Reads the client connection while a slow response is awaited.

    It starts reading only ``after`` seconds, so fast exchanges pay no task. End of
    file means the client hung up: ``on_gone`` runs (the exchange abandons the upstream
    request, Envoy's DC). Bytes are a pipelined request: the codec keeps them for later.
    """

    __slots__ = ("deadline", "down", "on_gone", "stopping", "task")

    def __init__(self, down: Downstream) -> None:
        self.down = down
        self.deadline = MovableTimer(down.loop, self._start)
        self.on_gone: Callable[[], None] | None = None
        self.task: asyncio.Task[None] | None = None
        # A cancelled watch still waits in reader.read() until the loop runs it once
        # more; the next read must wait for that, or the reader refuses a second waiter.
        self.stopping: asyncio.Task[None] | None = None

    def arm(self, after: float, on_gone: Callable[[], None]) -> None:
        self.on_gone = on_gone
        self.deadline.set_in(after)

    def disarm(self) -> None:
        self.deadline.clear()
        self.on_gone = None
        if self.task is not None:
            self.task.cancel()  # a pending read gives up nothing when cancelled
            self.stopping, self.task = self.task, None

    async def settle(self) -> None:
        """Return once a disarmed watch has really stopped reading."""
        task, self.stopping = self.stopping, None
        if task is not None and not task.done():
            await asyncio.wait((task,))

    def close(self) -> None:
        self.disarm()
        self.deadline.cancel()

    def _start(self) -> None:
        self.task = self.down.loop.create_task(self._watch())

    async def _watch(self) -> None:
        down = self.down
        try:
            data = await down.reader.read(down.read_size)
        except OSError:
            data = b""
        if data:
            down.codec.feed(data)
            return
        down.eof = True
        down.codec.feed(b"")
        if self.on_gone is not None:
            self.on_gone()


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
