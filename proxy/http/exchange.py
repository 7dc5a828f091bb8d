"""One request/response exchange, forwarded to an upstream one attempt at a time.

``Exchange.attempt(target)`` either fails with an ``UpstreamError`` before any
response byte reached the client (the request may be tried again elsewhere while
``can_retry``), holds back a final response whose status the caller listed (it then
drops it to try again, or relays it), or commits: from the response head on, a
failure can only end the client connection (``ResponseAbortedError``). Small bodies
are coalesced with their heads into one write each way; larger ones stream with
backpressure. A request or response that is complete at once goes out with the other
writes of the loop's pass (``proxy.http.outbox``). Writes go to the transports; a
side waits for its peer only while that transport has paused it (``Wire.drain``).
"""

from __future__ import annotations

import asyncio
import functools

from proxy.http.codec import (
    END,
    NEED_DATA,
    End,
    Event,
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
    UpstreamResetError,
)
from proxy.http.headers import rewrite_response, set_headers
from proxy.http.model import Endpoint, Limits, Target
from proxy.http.pool import Upstream, UpstreamPool
from proxy.l4.relay import relay_handoffs


class Exchange:
    """One request being forwarded: its body, its attempts and what reached the client."""

    __slots__ = (
        "attempts",
        "body",
        "bytes_sent",
        "client_gone",
        "committed",
        "down",
        "due",
        "endpoint",
        "headers",
        "held",
        "keep_client",
        "limits",
        "method",
        "pending",
        "relayed_all",
        "status",
        "target",
        "upgraded",
        "upstream_latency",
        "version",
    )

    def __init__(
        self,
        down: Downstream,
        limits: Limits,
        request: Request,
        headers: RawHeaders,
        body: RequestBody,
    ) -> None:
        self.down = down
        self.limits = limits
        self.method: bytes = request.method
        self.target: bytes = request.target
        self.version: bytes = request.version  # the client's: 1.1 may get 1xx and trailers
        self.headers = headers
        self.body = body
        self.committed = False  # the response head went to the client
        self.keep_client = True  # False: close the client connection after this exchange
        self.status = 0
        self.bytes_sent = 0
        self.attempts = 0
        self.endpoint: Endpoint | None = None
        self.upstream_latency: float | None = None
        self.upgraded = False
        self.client_gone = False
        self.pending = b""  # a 101 head not yet sent: it goes with the tunnel's first bytes
        self.relayed_all = False  # the whole response went to the client's transport
        self.held: _Held | None = None  # a response ``attempt`` held back for the caller
        # Loop time by which the response must be complete (0: no deadline). Envoy's
        # route timeout runs from the request's end to the response's: a body that
        # stalls is cut then, not after the (much longer) stream idle timeout.
        self.due = 0.0

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

    def _abandon(self, up: Upstream) -> None:
        """The client hung up while waiting: fail the pending response read at once."""
        self.client_gone = True
        up.transport.abort()

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

    async def _response_head(self, up: Upstream, event: Event) -> Response:
        """The final response head (or a 101), relaying informational ones on the way."""
        down = self.down
        while True:
            if event is NEED_DATA:
                pass  # the head is still incomplete: read on
            elif type(event) is Response:
                status = event.status
                if status >= 200 or status == 101:
                    return event
                if status != 100 and self.version == b"1.1":
                    headers, _ = rewrite_response(event.items, upgrade=False)
                    parts: list[bytes] = []
                    down.codec.send_response(status, event.reason, headers, parts)
                    down.write(b"".join(parts))
            else:
                raise UpstreamResetError(f"unexpected {event!r} before a response")
            event = await up.next_event()

    def _relay_buffered(self, up: Upstream, response: Response) -> bool:
        """Commit: send the head and the body that already arrived, in one write.

        True when that was the whole response and nothing waits to be flushed: the
        common case needs no further await. Otherwise ``_relay_rest`` goes on.
        """
        down = self.down
        codec = down.codec
        status = response.status
        headers, _ = rewrite_response(response.items, upgrade=status == 101)
        if down.closing and status != 101:  # draining: the client must not send more here
            headers.append((b"Connection", b"connection", b"close"))
        parts: list[bytes] = []  # joined below, once
        codec.send_response(status, response.reason, headers, parts)
        self.status = status
        self.committed = True
        if status == 101 and codec.switched:
            self.pending = b"".join(parts)  # the tunnel sends the head with the first bytes
            return False
        trailers = self.version == b"1.1"
        next_event = up.codec.next_event
        while True:  # what already arrived goes out with the head, in one write
            try:  # ``up.buffered_event``, inline: this is the body of nearly every response
                event_in = next_event()
            except ProtocolError as exc:
                raise up.protocol_failure(exc) from exc
            if event_in is NEED_DATA:
                down.write(b"".join(parts))
                return False
            if self._forward_event(event_in, parts, trailers):
                self.relayed_all = True
                if not down.transport.get_write_buffer_size():
                    down.send_soon(b"".join(parts))  # the client keeps up: the usual case
                    return True
                down.write(b"".join(parts))
                # Done, unless the client is far behind: then wait for it first.
                return not down.wire.write_paused

    async def _relay_rest(self, up: Upstream) -> bool:
        """After ``_relay_buffered``: True when the upstream ended the exchange cleanly."""
        down = self.down
        if self.pending:  # a 101 went out (``_relay_buffered``): tunnel from here
            head, self.pending = self.pending, b""
            await self._tunnel(up, head)
            return False
        await down.drain()
        if self.relayed_all:
            return True  # complete, and the client has caught up
        return await self._stream_response(up, self.version == b"1.1")

    async def _stream_response(self, up: Upstream, trailers: bool) -> bool:
        down = self.down
        wire = down.wire
        idle = self.limits.stream_idle_timeout
        parts: list[bytes] = []
        due, loop = self.due, down.loop
        # While the upstream is silent mid-body, notice a client that hangs up (DC) as
        # while awaiting the head, instead of holding the upstream until the deadline.
        watch, after = down.watch, self.limits.watch_client_after
        abandon = functools.partial(self._abandon, up)
        while True:
            up.arm(min(idle, due - loop.time()) if due else idle)
            watch.arm(after, abandon)
            try:
                event = await up.next_event()
            finally:
                up.disarm()
                watch.disarm()
            done = self._forward_event(event, parts, trailers)
            down.write(b"".join(parts))
            parts.clear()
            if wire.write_paused or wire.lost:  # else there is nothing to wait for
                await down.drain()
            if done:
                return True

    def _forward_event(self, event: Event, parts: list[bytes], trailers: bool) -> bool:
        """Append the client-side bytes for one upstream body event; True at the end."""
        kind = type(event)
        if kind is bytearray or kind is bytes:
            chunk: bytes | bytearray = event  # type: ignore[assignment]  # (narrowed above)
            self.bytes_sent += len(chunk)
            self.down.codec.send_data(chunk, parts)
            return False
        if type(event) is End:
            self.down.codec.send_end(event if trailers else END, parts)
            return True
        raise UpstreamResetError(f"unexpected {event!r} in a response body")

    async def _tunnel(self, up: Upstream, head: bytes) -> None:
        down = self.down
        self.upgraded = True
        self.keep_client = False
        from_upstream = up.codec.trailing()
        from_client = down.codec.trailing()
        down.write(head + from_upstream)
        if from_client:
            up.transport.write(from_client)
        to_client = (await relay_handoffs(down.wire.handoff(), up.wire.handoff())).sent
        self.bytes_sent += len(from_upstream) + to_client


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
