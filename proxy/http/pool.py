"""Keep-alive upstream connections, pooled per endpoint.

The pool decides synchronously (reuse an idle connection, open a new one, or queue
behind the per-endpoint cap) and only then awaits the connect. A connection goes back
to the pool only when h11 says both sides finished the exchange cleanly; anything
else (closed, errored, response not fully read) is closed instead. Idle connections
expire after ``idle_timeout``, checked lazily and by one sweep timer per pool.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Awaitable, Callable

import h11

from proxy.http.deadline import Deadline
from proxy.http.errors import (
    UpstreamConnectError,
    UpstreamOverflowError,
    UpstreamResetError,
    UpstreamTimeoutError,
)
from proxy.http.model import Endpoint

Opener = Callable[[str, int], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


class Upstream:
    """One connection to an endpoint with its h11 client-side state machine."""

    __slots__ = (
        "answered",
        "deadline",
        "endpoint",
        "h11",
        "idle_since",
        "loop",
        "reader",
        "reused",
        "timed_out",
        "writer",
    )

    def __init__(
        self, endpoint: Endpoint, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.endpoint = endpoint
        self.loop = asyncio.get_running_loop()
        self.reader = reader
        self.writer = writer
        self.h11 = h11.Connection(h11.CLIENT)
        self.idle_since = 0.0
        self.reused = False
        self.answered = False  # a byte of the current response arrived
        self.timed_out = False
        self.deadline = Deadline(self.loop, self.expire)

    def buffered_event(self) -> object:
        """The next event from bytes already received (``h11.NEED_DATA`` if none)."""
        try:
            return self.h11.next_event()
        except h11.RemoteProtocolError as exc:
            raise self._failure(f"bad response from {self._name()}: {exc}") from exc

    async def next_event(self, read_size: int) -> object:
        """The next h11 event, reading the socket as needed; failures are ``UpstreamError``."""
        event = self.buffered_event()
        while event is h11.NEED_DATA:
            try:
                data = await self.reader.read(read_size)
            except OSError as exc:
                raise self.read_failed(exc) from exc
            event = self.feed(data)
        return event

    def feed(self, data: bytes) -> object:
        """Bytes just read from the socket (b"": end of file); then the next event."""
        if data:
            self.answered = True
        self.h11.receive_data(data)
        return self.buffered_event()

    def read_failed(self, exc: OSError) -> UpstreamResetError | UpstreamTimeoutError:
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
        """Timer callback: give up on this connection; pending reads see end-of-file."""
        self.timed_out = True
        self.writer.transport.abort()

    def reusable(self) -> bool:
        conn = self.h11
        return (
            conn.our_state is h11.DONE
            and conn.their_state is h11.DONE
            and not self.writer.transport.is_closing()
            and not self.timed_out
            and not conn.trailing_data[0]  # bytes beyond the response: the peer is confused
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
        self._open_connection: Opener = opener or asyncio.open_connection
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
                handed.reused = True
                return handed
            if handed is not None:
                self._close(handed)
        self._count[endpoint] += 1  # the slot is taken before the await
        try:
            reader, writer = await asyncio.wait_for(
                self._open_connection(endpoint[0], endpoint[1]), connect_timeout
            )
        except (OSError, TimeoutError) as exc:
            self._free_slot(endpoint)
            why = "timed out" if isinstance(exc, TimeoutError) else str(exc)
            raise UpstreamConnectError(f"connect to {endpoint[0]}:{endpoint[1]}: {why}") from exc
        except BaseException:
            self._free_slot(endpoint)
            raise
        self.opened += 1
        return Upstream(endpoint, reader, writer)

    def take_idle(self, endpoint: Endpoint) -> Upstream | None:
        """An idle connection still worth using, without awaiting (the hot path)."""
        idle = self._idle.get(endpoint)
        if not idle:
            return None
        now = idle[-1].loop.time()
        while idle:
            up = idle.pop()
            if now - up.idle_since < self.idle_timeout and not _closed(up):
                up.reused = True
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

    def release(self, up: Upstream) -> None:
        """Return ``up`` after a request; it is pooled only if its exchange ended cleanly."""
        if not up.reusable():
            self._close(up)
            return
        up.h11.start_next_cycle()
        up.answered = False
        self._park(up)

    def _park(self, up: Upstream) -> None:
        waiters = self._waiters.get(up.endpoint)
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(up)
                return
        loop = up.loop
        up.idle_since = loop.time()
        self._idle.setdefault(up.endpoint, []).append(up)
        if self._sweeper is None:
            self._sweeper = loop.call_later(self.idle_timeout, self._sweep)

    def discard(self, up: Upstream) -> None:
        """Close ``up``: it failed, was upgraded, or its response was not read to the end."""
        self._close(up)

    def _close(self, up: Upstream) -> None:
        up.deadline.cancel()
        if up.timed_out:
            up.writer.transport.abort()  # nothing worth flushing to a peer that hung
        else:
            up.writer.close()
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
                await up.writer.wait_closed()


def _closed(up: Upstream) -> bool:
    return up.writer.transport.is_closing() or up.reader.at_eof()
