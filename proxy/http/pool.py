"""Keep-alive upstream connections, pooled per endpoint; each hands out request streams.

The pool decides synchronously (reuse an idle connection, open a new one, or queue
behind the per-endpoint cap) and only then awaits the connect. An exchange works on
a stream; an HTTP/1 connection carries one stream at a time (``streams_left`` is 1
while it is idle, 0 while busy), so for HTTP/1 the connection is its own stream. A
connection goes back to the pool only when its codec says both sides finished the
exchange cleanly; anything else (closed, errored, response not fully read) is
closed instead. An idle connection whose peer closes it is dropped at once (its
protocol hears the FIN); the others expire after ``idle_timeout``, checked lazily and
by one sweep timer per pool.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import socket
from collections.abc import Awaitable, Callable
from typing import Final

from proxy.core.errors import DialError, connect_reason
from proxy.http.codec import NEED_DATA, Codec, CodecFactory, Event, H11Codec, ProtocolError, Role
from proxy.http.errors import (
    UpstreamConnectError,
    UpstreamOverflowError,
    UpstreamResetError,
    UpstreamTimeoutError,
)
from proxy.http.model import Endpoint
from proxy.http.timer import MovableTimer
from proxy.http.wire import Wire
from proxy.policy.overload import Overload

# Dials a socket to (host, port), e.g. from a chosen source address; the pool wraps it
# in its own protocol. Failures are OSError, TimeoutError or DialError.
Opener = Callable[[str, int], Awaitable[socket.socket]]
READ_LIMIT: Final = 64 * 1024  # response bytes an upstream connection buffers unconsumed


class Upstream:
    """One connection to an endpoint with its codec in the client role.

    A ``Wire`` feeds the codec from the transport's callbacks, so a pooled connection
    hears its peer close at once, with no read pending (the pool drops it then).
    """

    __slots__ = (
        "busy",
        "codec",
        "deadline",
        "endpoint",
        "idle_since",
        "loop",
        "mark",
        "reused",
        "timed_out",
        "transport",
        "wire",
    )

    def __init__(
        self,
        endpoint: Endpoint,
        codec: CodecFactory = H11Codec,
        read_limit: int = READ_LIMIT,
        budget: Overload | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.loop = asyncio.get_running_loop()
        self.codec: Codec = codec(Role.CLIENT)
        self.wire = Wire(self.codec.feed, read_limit, budget)
        self.transport: asyncio.Transport = None  # type: ignore[assignment]  # ``connected``
        self.busy = True  # carrying a stream; False while idle in the pool
        self.idle_since = 0.0
        self.reused = False
        self.mark = 0  # the wire's byte count when the current exchange began
        self.timed_out = False
        self.deadline = MovableTimer(self.loop, self.expire)

    def connected(self) -> None:
        """The wire has its transport (``create_connection`` returned)."""
        self.transport = self.wire.transport  # type: ignore[assignment]

    @property
    def answered(self) -> bool:
        """A byte arrived since the current exchange began."""
        return self.wire.received != self.mark

    @property
    def streams_left(self) -> int:
        """How many more request streams this connection can carry now (HTTP/1: one)."""
        if self.busy or self.timed_out or self.wire.eof or self.transport.is_closing():
            return 0
        return 1

    def buffered_event(self) -> Event:
        """The next event from bytes already received (``NEED_DATA`` if none)."""
        try:
            return self.codec.next_event()
        except ProtocolError as exc:
            raise self.protocol_failure(exc) from exc

    def protocol_failure(self, exc: ProtocolError) -> UpstreamResetError | UpstreamTimeoutError:
        return self._failure(f"bad response from {self._name()}: {exc}")

    async def next_event(self) -> Event:
        """The next event, waiting for bytes as needed; failures are ``UpstreamError``."""
        event = self.buffered_event()
        while event is NEED_DATA:
            await self.receive()
            event = self.buffered_event()
        return event

    async def receive(self) -> None:
        """Wait until more of the response arrived (the wire fed it to the codec)."""
        wire = self.wire
        if wire.eof:  # the codec heard the end and still needs data: none will come
            raise self._failure(f"connection to {self._name()} closed")
        await wire.wait()
        if wire.error is not None:
            raise self.read_failed(wire.error)

    def read_failed(self, exc: Exception) -> UpstreamResetError | UpstreamTimeoutError:
        return self._failure(f"connection to {self._name()} failed: {exc}")

    def _failure(self, message: str) -> UpstreamResetError | UpstreamTimeoutError:
        if self.timed_out:
            return UpstreamTimeoutError(f"{self._name()} did not answer in time")
        # Nothing of a response arrived on a reused connection: it was closed while idle.
        stale = self.reused and not self.answered
        return UpstreamResetError(message, stale=stale)

    def _name(self) -> str:
        return f"{self.endpoint[0]}:{self.endpoint[1]}"

    def arm(self, delay: float) -> None:
        """Expire this connection unless ``disarm`` is called within ``delay`` seconds."""
        self.deadline.set_in(delay)

    def disarm(self) -> None:
        self.deadline.clear()

    def expire(self) -> None:
        """Timer callback: give up on this connection; a pending wait sees the end."""
        self.timed_out = True
        self.transport.abort()

    def reuse(self) -> bool:
        """Get ready for the next request; False when this connection cannot carry one."""
        return (
            not self.timed_out
            and not self.wire.eof
            and not self.transport.is_closing()
            and self.codec.next_message()
        )


class UpstreamPool:
    """Idle keep-alive connections per endpoint, at most ``max_per_endpoint`` open each."""

    def __init__(
        self,
        *,
        max_per_endpoint: int = 1024,
        max_pending: int = 1024,
        idle_timeout: float = 60.0,
        opener: Opener | None = None,
        codec: CodecFactory = H11Codec,
        read_limit: int = READ_LIMIT,
        overload: Overload | None = None,
    ) -> None:
        if max_per_endpoint < 1:
            raise ValueError(f"max_per_endpoint: must be >= 1, got {max_per_endpoint!r}")
        if max_pending < 0:
            raise ValueError(f"max_pending: must be >= 0, got {max_pending!r}")
        if idle_timeout <= 0:
            raise ValueError(f"idle_timeout: must be > 0, got {idle_timeout!r}")
        self.max_per_endpoint = max_per_endpoint
        self.max_pending = max_pending
        self.idle_timeout = idle_timeout
        self._opener = opener  # None: ``create_connection`` to the endpoint itself
        self.codec = codec
        self.read_limit = read_limit
        # The worker's guard: caps the requests waiting in all pools together, and
        # counts what full upstream buffers hold.
        self.overload = overload
        self._idle: dict[Endpoint, list[Upstream]] = {}
        self._count: collections.Counter[Endpoint] = collections.Counter()
        self._waiters: dict[Endpoint, collections.deque[asyncio.Future[Upstream | None]]] = {}
        self._sweeper: asyncio.TimerHandle | None = None
        self.opened = 0  # connections ever opened, for tests and /clusters

    def open_connections(self, endpoint: Endpoint) -> int:
        return self._count[endpoint]

    def idle_connections(self, endpoint: Endpoint) -> int:
        return len(self._idle.get(endpoint, ()))

    async def acquire(
        self, endpoint: Endpoint, *, connect_timeout: float, fresh: bool = False
    ) -> Upstream:
        """A connection ready for a new request; ``fresh`` skips idle ones."""
        while True:
            if not fresh and (up := self.take_idle(endpoint)) is not None:
                return up
            if self._count[endpoint] < self.max_per_endpoint:
                break
            handed = await self._wait(endpoint, connect_timeout)
            if handed is not None and not fresh:
                handed.reused = handed.busy = True
                return handed
            if handed is not None:
                self._close(handed)
        self._count[endpoint] += 1  # the slot is taken before the await
        up = Upstream(endpoint, self.codec, self.read_limit, self.overload)
        try:
            await asyncio.wait_for(self._connect(up), connect_timeout)
        except (OSError, TimeoutError, DialError) as exc:
            self._free_slot(endpoint)
            reason = connect_reason(exc)
            why = "timed out" if reason == "timeout" else str(exc)
            raise UpstreamConnectError(
                f"connect to {endpoint[0]}:{endpoint[1]}: {why}", reason
            ) from exc
        except BaseException:
            self._free_slot(endpoint)
            raise
        self.opened += 1
        up.connected()
        up.wire.on_end = functools.partial(self._ended, up)
        return up

    async def _connect(self, up: Upstream) -> None:
        loop = up.loop
        host, port = up.endpoint
        if self._opener is None:
            await loop.create_connection(lambda: up.wire, host, port)
            return
        sock = await self._opener(host, port)
        try:
            await loop.create_connection(lambda: up.wire, sock=sock)
        except BaseException:
            sock.close()
            raise

    def take_idle(self, endpoint: Endpoint) -> Upstream | None:
        """An idle connection still worth using, without awaiting (the hot path)."""
        idle = self._idle.get(endpoint)
        if not idle:
            return None
        now = idle[-1].loop.time()
        while idle:
            up = idle.pop()
            # Idle: ``busy`` is False, so ``streams_left`` asks only the transport.
            if now - up.idle_since < self.idle_timeout and up.streams_left:
                up.reused = up.busy = True
                return up
            self._close(up)
        return None

    async def _wait(self, endpoint: Endpoint, timeout: float) -> Upstream | None:
        waiters = self._waiters.setdefault(endpoint, collections.deque())
        if len(waiters) >= self.max_pending:
            raise UpstreamOverflowError(
                f"{endpoint[0]}:{endpoint[1]}: {self.max_per_endpoint} connections busy "
                f"and {len(waiters)} requests waiting"
            )
        overload = self.overload
        if overload is not None and not overload.admit_pending():
            raise UpstreamOverflowError(
                f"{endpoint[0]}:{endpoint[1]}: {self.max_per_endpoint} connections busy and "
                f"this worker's {overload.limits.max_pending_requests} pending requests waiting"
            )
        waiter: asyncio.Future[Upstream | None] = asyncio.get_running_loop().create_future()
        waiters.append(waiter)
        try:
            return await asyncio.wait_for(waiter, timeout)
        except TimeoutError as exc:
            raise UpstreamTimeoutError(
                f"no connection to {endpoint[0]}:{endpoint[1]} became free in time"
            ) from exc
        except BaseException:
            # Cancelled just as a connection or a slot was handed over: pass it on.
            if waiter.done() and not waiter.cancelled():
                handed = waiter.result()
                if handed is None:
                    self._wake(endpoint)
                else:
                    self._park(handed)
            raise
        finally:
            with contextlib.suppress(ValueError):
                waiters.remove(waiter)
            if overload is not None:
                overload.pending_done()

    def release(self, up: Upstream) -> None:
        """Return ``up`` after a request; it is pooled only if its exchange ended cleanly."""
        if not up.reuse():
            self._close(up)
            return
        wire = up.wire
        if wire.reading_paused:  # the response filled its buffer: an idle connection
            wire.consumed()  # must hear its peer close, and holds nothing now
        up.mark = wire.received
        self._park(up)

    def _park(self, up: Upstream) -> None:
        waiters = self._waiters.get(up.endpoint)
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(up)
                return
        loop = up.loop
        up.busy = False
        up.idle_since = loop.time()
        self._idle.setdefault(up.endpoint, []).append(up)
        if self._sweeper is None:
            self._sweeper = loop.call_later(self.idle_timeout, self._sweep)

    def discard(self, up: Upstream) -> None:
        """Close ``up``: it failed, was upgraded, or its response was not read to the end."""
        self._close(up)

    def _ended(self, up: Upstream) -> None:
        """The wire's ``on_end``: the peer closed (or reset) the connection."""
        if up.busy:
            return  # the exchange on it hears of it and settles it
        idle = self._idle.get(up.endpoint)
        if idle is not None and up in idle:
            idle.remove(up)
            if not idle:
                del self._idle[up.endpoint]
        self._close(up)

    def _close(self, up: Upstream) -> None:
        up.wire.on_end = None  # closed here: its slot is freed once, now
        up.deadline.cancel()
        if up.timed_out:
            up.transport.abort()  # nothing worth flushing to a peer that hung
        else:
            up.transport.close()
        self._free_slot(up.endpoint)

    def _free_slot(self, endpoint: Endpoint) -> None:
        self._count[endpoint] -= 1
        if self._count[endpoint] <= 0:
            del self._count[endpoint]
        self._wake(endpoint)

    def _wake(self, endpoint: Endpoint) -> None:
        waiters = self._waiters.get(endpoint)
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # a slot is free: the waiter opens a connection
                return

    def _sweep(self) -> None:
        self._sweeper = None
        loop = asyncio.get_running_loop()
        cutoff = loop.time() - self.idle_timeout
        for endpoint, idle in list(self._idle.items()):
            keep = []
            for up in idle:
                if up.idle_since > cutoff and not _closed(up):
                    keep.append(up)
                else:
                    self._close(up)
            if keep:
                self._idle[endpoint] = keep
            else:
                del self._idle[endpoint]
        if self._idle:
            self._sweeper = loop.call_later(self.idle_timeout / 2, self._sweep)

    async def close(self) -> None:
        """Close every idle connection (busy ones close when their exchange ends)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        idle = [up for ups in self._idle.values() for up in ups]
        self._idle.clear()
        for up in idle:
            self._close(up)
        for up in idle:
            with contextlib.suppress(OSError):
                await up.wire.wait_closed()


def _closed(up: Upstream) -> bool:
    return up.transport.is_closing() or up.wire.eof
