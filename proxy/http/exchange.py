"""One request/response exchange, forwarded to an upstream one attempt at a time.

``Exchange.attempt(target)`` either fails with an ``UpstreamError`` before any
response byte reached the client (the request may be tried again elsewhere while
``can_retry``), holds back a final response whose status the caller listed (it then
drops it to try again, or relays it), or commits: from the response head on, a
failure can only end the client connection (``ResponseAbortedError``). Small bodies
are coalesced with their heads into one write each way; larger ones stream with
backpressure. A request or response that is complete at once goes out with the other
writes of the loop's pass (``proxy.http.outbox``); the response side is
``proxy.http.response.ResponseRelay``, the base class. Writes go to the transports; a
side waits for its peer only while that transport has paused it (``Wire.drain``).
"""

from __future__ import annotations

import asyncio
import functools

from proxy.http.codec import (
    END,
    End,
    ProtocolError,
    RawHeaders,
    Request,
    Response,
)
from proxy.http.downstream import Downstream, RequestBody
from proxy.http.errors import (
    DownstreamDisconnect,
    DownstreamError,
    MalformedRequest,
    ResponseAbortedError,
    UpstreamError,
)
from proxy.http.headers import set_headers
from proxy.http.model import Endpoint, Limits, Target
from proxy.http.pool import Upstream, UpstreamPool
from proxy.http.response import ResponseRelay


class Exchange(ResponseRelay):
    """One request being forwarded: its body, its attempts and what reached the client."""

    __slots__ = (
        "attempts",
        "body",
        "endpoint",
        "headers",
        "held",
        "method",
        "target",
        "upstream_latency",
    )

    def __init__(
        self,
        down: Downstream,
        limits: Limits,
        request: Request,
        headers: RawHeaders,
        body: RequestBody,
    ) -> None:
        super().__init__(down, limits, request.version)
        self.method: bytes = request.method
        self.target: bytes = request.target
        self.headers = headers
        self.body = body
        self.attempts = 0
        self.endpoint: Endpoint | None = None
        self.upstream_latency: float | None = None
        self.held: _Held | None = None  # a response ``attempt`` held back for the caller

    @property
    def can_retry(self) -> bool:
        return not self.committed and self.body.replayable

    async def attempt(self, target: Target, *, fresh: bool = False) -> int:
        """Send the request to ``target.endpoint`` and relay its response to the client.

        Returns 0 once the response went to the client. A final status listed in
        ``target.hold`` is held back instead and returned: nothing reached the client,
        and the caller either drops it (``drop_held``, to try again) or relays it
        (``relay_held``). The engine never asks the caller mid-attempt.
        """
        if self.attempts and not self.can_retry:
            raise RuntimeError("attempt() again after the exchange committed or lost its body")
        self.attempts += 1
        self.endpoint = target.endpoint
        pool = target.pool
        loop = self.down.loop
        start = loop.time()
        # None: the Limits default; 0 or less: no deadline (Envoy's "timeout: 0s").
        timeout = self.limits.upstream_timeout if target.timeout is None else target.timeout
        connect_timeout = self.limits.connect_timeout
        if timeout > 0:
            connect_timeout = min(connect_timeout, timeout)
        up = None if fresh else pool.take_idle(target.endpoint)
        if up is None:
            up = await pool.acquire(target.endpoint, connect_timeout=connect_timeout, fresh=fresh)
        pump: asyncio.Task[None] | None = None
        watch = self.down.watch
        finished = held = False
        failure: BaseException | None = None
        try:
            pump = self._send_request(up, target, timeout)
            if pump is None:  # the client is silent now; notice if it hangs up
                watch.arm(self.limits.watch_client_after, functools.partial(self._abandon, up))
            # The common case waits right here (nothing of a response was received
            # before the request went out) and finds the final response head.
            wire = up.wire
            if wire.received != up.mark or wire.eof:  # it spoke while idle: the codec judges
                response = await up.next_event()
            else:
                await wire.wait()  # (``Upstream.receive``, inline: once per request)
                if wire.error is not None:
                    raise up.read_failed(wire.error)
                response = up.buffered_event()
            if type(response) is not Response or response.status < 200:
                response = await self._response_head(up, response)  # 1xx, partial, odd
            watch.disarm()
            up.disarm()
            self.upstream_latency = loop.time() - start
            if response.status in target.hold:
                self.held = _Held(up, response, pump, pool)
                held = True
                return response.status
            finished = self._relay_buffered(up, response)
            if not finished:
                finished = await self._relay_rest(up)
        except UpstreamError as exc:
            raise self._attempt_failure(exc, pump) from exc
        finally:
            watch.disarm()
            up.disarm()
            if not held:
                failure = self._settle(up, pump, finished, pool)
        if failure is not None and isinstance(failure, DownstreamDisconnect):
            raise failure
        return 0

    def drop_held(self) -> None:
        """Throw away the held response (and its connection): another attempt follows."""
        held, self.held = self.held, None
        if held is not None:
            failure = self._settle(held.up, held.pump, False, held.pool)
            if failure is not None and isinstance(failure, DownstreamDisconnect):
                raise failure

    async def relay_held(self) -> None:
        """Relay the held response after all, as ``attempt`` would have."""
        held, self.held = self.held, None
        if held is None:
            raise RuntimeError("relay_held() with no response held")
        up, pump, finished = held.up, held.pump, False
        try:
            finished = self._relay_buffered(up, held.response)
            if not finished:
                finished = await self._relay_rest(up)
        except UpstreamError as exc:
            raise self._attempt_failure(exc, pump) from exc
        finally:
            failure = self._settle(up, pump, finished, held.pool)
        if failure is not None and isinstance(failure, DownstreamDisconnect):
            raise failure

    def _attempt_failure(
        self, exc: UpstreamError, pump: asyncio.Task[None] | None
    ) -> BaseException:
        """What an upstream failure means here: still the upstream's, or the client's."""
        if self.client_gone:
            return DownstreamDisconnect("client went away while waiting")
        failure = _pump_failure(pump)
        if failure is not None:
            return failure
        if self.committed:
            return ResponseAbortedError(exc)
        return exc

    def _settle(
        self,
        up: Upstream,
        pump: asyncio.Task[None] | None,
        finished: bool,
        pool: UpstreamPool,
    ) -> BaseException | None:
        """End an attempt's connection: pooled only when its exchange finished cleanly.
        Returns the request body pump's failure, if it had one."""
        if pump is not None and not pump.done():
            # The client may still be sending the body: a later attempt reads on from
            # here; if none does, the body stays incomplete and ``HttpProxy`` closes.
            pump.cancel()
            finished = False
        if finished:
            pool.release(up)
        else:
            pool.discard(up)
        failure = _pump_failure(pump)
        if failure is not None:
            self.keep_client = False
        return failure

    def _send_request(
        self, up: Upstream, target: Target, timeout: float
    ) -> asyncio.Task[None] | None:
        """Write the head and whatever body is at hand; a task streams the rest.

        The response deadline starts once the whole request went out, as Envoy's does.
        """
        codec = up.codec
        headers = set_headers(self.headers, target.set_headers)
        parts: list[bytes] = []  # joined once, here, for the whole request
        body = self.body
        body.started = True
        bodiless = body.complete and not body.kept and not body.trailers  # e.g. a GET
        try:
            codec.send_request(self.method, self.target, headers, parts, END if bodiless else None)
        except ProtocolError as exc:
            raise MalformedRequest(f"request cannot be forwarded: {exc}") from exc
        for chunk in body.kept:
            codec.send_data(chunk, parts)
        if not body.replayable:
            body.kept.clear()
        if body.complete:
            if not bodiless:
                codec.send_end(End(body.trailers) if body.trailers else END, parts)
            self.down.outbox.send(up.transport, b"".join(parts))
            self.due = 0.0
            if timeout > 0:
                up.arm(timeout)
                self.due = self.down.loop.time() + timeout
            return None
        up.transport.write(b"".join(parts))  # nothing is held for it: its last request was answered
        self.due = 0.0
        return self.down.loop.create_task(self._pump(up, timeout))

    async def _pump(self, up: Upstream, timeout: float) -> None:
        body, codec, transport, wire = self.body, up.codec, up.transport, up.wire
        idle = self.limits.stream_idle_timeout
        parts: list[bytes] = []
        try:
            while (chunk := await body.read(idle)) is not None:
                codec.send_data(chunk, parts)
                transport.write(b"".join(parts))
                parts.clear()
                if wire.write_paused:  # the upstream is behind: the transport said so
                    await asyncio.wait_for(wire.drain(), idle)
            codec.send_end(End(body.trailers) if body.trailers else END, parts)
            transport.write(b"".join(parts))
            if timeout > 0:
                up.arm(timeout)
                self.due = self.down.loop.time() + timeout
        except DownstreamError:
            # Make the pending response read fail now rather than at the timeout.
            transport.abort()
            raise
        except TimeoutError:
            up.expire()  # the upstream stopped reading the body: the response read fails UT
        except OSError:
            return  # the upstream went away; the response side reports how


class _Held:
    """A final response head ``attempt`` held back, with what is needed to finish it."""

    __slots__ = ("pool", "pump", "response", "up")

    def __init__(
        self,
        up: Upstream,
        response: Response,
        pump: asyncio.Task[None] | None,
        pool: UpstreamPool,
    ) -> None:
        self.up, self.response, self.pump, self.pool = up, response, pump, pool


def _pump_failure(pump: asyncio.Task[None] | None) -> BaseException | None:
    if pump is None or not pump.done() or pump.cancelled():
        return None
    return pump.exception()
