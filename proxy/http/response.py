"""The response side of one exchange: the upstream's response relayed to the client.

``Exchange`` (``proxy.http.exchange``) is this class plus the attempts and the request
side. Small bodies go out with their heads in one write, the usual complete response
with the other writes of the loop's pass (``Downstream.send_soon``); larger ones
stream with backpressure; a 101 turns the connection into a tunnel.
"""

from __future__ import annotations

import functools

from proxy.http.codec import END, NEED_DATA, End, Event, ProtocolError, Response
from proxy.http.downstream import Downstream
from proxy.http.errors import UpstreamResetError
from proxy.http.headers import rewrite_response
from proxy.http.model import Limits
from proxy.http.pool import Upstream
from proxy.l4.relay import relay_handoffs


class ResponseRelay:
    """What reached the client of one exchange, and how the rest gets there."""

    __slots__ = (
        "bytes_sent",
        "client_gone",
        "committed",
        "down",
        "due",
        "keep_client",
        "limits",
        "pending",
        "relayed_all",
        "status",
        "upgraded",
        "version",
    )

    def __init__(self, down: Downstream, limits: Limits, version: bytes) -> None:
        self.down = down
        self.limits = limits
        self.version = version  # the client's: 1.1 may get 1xx and trailers
        self.committed = False  # the response head went to the client
        self.keep_client = True  # False: close the client connection after this exchange
        self.status = 0
        self.bytes_sent = 0
        self.upgraded = False
        self.client_gone = False
        self.pending = b""  # a 101 head not yet sent: it goes with the tunnel's first bytes
        self.relayed_all = False  # the whole response went to the client's transport
        # Loop time by which the response must be complete (0: no deadline). Envoy's
        # route timeout runs from the request's end to the response's: a body that
        # stalls is cut then, not after the (much longer) stream idle timeout.
        self.due = 0.0

    def _abandon(self, up: Upstream) -> None:
        """The client hung up while waiting: fail the pending response read at once."""
        self.client_gone = True
        up.transport.abort()

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
