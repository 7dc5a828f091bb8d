"""The h11 codec: h11's connection state machine behind the seam (``codec.base``).

h11 is the strict reference: it enforces RFC 9112's grammar and framing on both
sides and refuses what is ambiguous. This adapter only translates: h11 events to
the neutral ones (a body chunk is its bytes, the end without trailers is ``END``),
h11's errors to ``ProtocolError`` with the status h11 suggests, and outgoing heads
to h11 events built by ``h11fast`` (no second grammar check for parsed values).
Incoming heads are also held to the grammar shared with the llhttp codec
(``h11strict``), where h11 alone would let a head through that llhttp refuses.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import h11

from proxy.http.codec import h11fast, h11strict
from proxy.http.codec.base import (
    CLOSED,
    DEFAULT_MAX_HEAD,
    END,
    NEED_DATA,
    PAUSED,
    End,
    Event,
    HeaderItems,
    ProtocolError,
    RawHeaders,
    Request,
    Response,
    Role,
)

_Data = h11.Data
_EndOfMessage = h11.EndOfMessage
_EOM: Final = h11.EndOfMessage()
_NEED_DATA: Final = h11.NEED_DATA
_DONE: Final = h11.DONE
_SWITCHED: Final = h11.SWITCHED_PROTOCOL
_CONTINUE: Final = h11.InformationalResponse(status_code=100, headers=[])
_NOT_FAST: Final = not h11fast.FAST  # h11 changed shape: the public constructors, slower
_ROLE: Final = {Role.SERVER: h11.SERVER, Role.CLIENT: h11.CLIENT}
_STRICT: Final = h11strict.SHAPE
# h11's messages for the end of input in the middle of a message (rule 3's ``truncated``);
# any other error is the bytes' own fault, whether or not the peer closed afterwards.
_EOF_ERRORS: Final = (
    "peer unexpectedly closed",
    "peer closed connection without",
    "can't handle event type ConnectionClosed",
)


class H11Codec:
    """One connection's h11 state in one role, speaking the seam's events."""

    __slots__ = ("_conn", "_head_next", "_max", "_scan", "feed", "role")

    name: Final = "h11"

    def __init__(self, role: Role, *, max_head: int = DEFAULT_MAX_HEAD) -> None:
        self.role = role
        self._conn = h11.Connection(_ROLE[role], max_incomplete_event_size=max_head)
        self._max = max_head
        self._scan = 0  # where ``h11strict.raw_fault`` resumes looking for a head's end
        # A head comes next: h11's ``their_state`` is IDLE or SEND_RESPONSE, tracked
        # here because that property costs a Python call on every event.
        self._head_next = True
        # ``feed`` is h11's own method: one call per read, no wrapper around it.
        self.feed: Callable[[bytes], None] = self._conn.receive_data

    # -- receiving -----------------------------------------------------------------

    def next_event(self) -> Event:
        conn = self._conn
        if self._head_next and _STRICT:
            fault, self._scan = h11strict.raw_fault(conn, self._scan, self._max)
            if fault is not None:
                raise fault
        try:
            # Any: the checks below are ``type() is``, which mypy does not narrow on.
            event: Any = conn.next_event()
        except h11.RemoteProtocolError as exc:
            raise self._error(exc) from exc
        kind = type(event)
        if kind is _Data:
            data: bytes | bytearray = event.data  # h11's buffer slices: bytearrays
            return data
        if kind is _EndOfMessage:
            trailers = h11fast.items(event.headers) if _NOT_FAST else event.headers._full_items
            return End([(name, value) for name, _, value in trailers]) if trailers else END
        if event is _NEED_DATA:
            return NEED_DATA
        if kind is h11.Request:
            items = h11fast.items(event.headers) if _NOT_FAST else event.headers._full_items
            head: Request | Response = Request(
                event.method, event.target, event.http_version, items
            )
            self._head_next = False
        elif kind is h11.Response or kind is h11.InformationalResponse:
            items = h11fast.items(event.headers) if _NOT_FAST else event.headers._full_items
            head = Response(event.status_code, event.reason, event.http_version, items)
            self._head_next = kind is not h11.Response  # after a 1xx, the final head
        else:
            return PAUSED if event is h11.PAUSED else CLOSED  # h11.ConnectionClosed
        fault = h11strict.head_fault(head)
        if fault is not None:
            raise fault
        return head

    def _error(self, exc: h11.RemoteProtocolError) -> ProtocolError:
        status = exc.error_status_hint
        if status != 431 and str(exc).startswith(_EOF_ERRORS):
            return ProtocolError(f"peer closed mid-message: {exc}", status, truncated=True)
        if status not in (400, 413, 431, 501):
            status = 400
        return ProtocolError(str(exc), status)

    @property
    def buffered(self) -> bool:
        return bool(self._conn.trailing_data[0])

    @property
    def peer_version(self) -> bytes | None:
        version: bytes | None = self._conn.their_http_version
        return version

    @property
    def waiting_for_continue(self) -> bool:
        return bool(self._conn.they_are_waiting_for_100_continue)

    @property
    def switched(self) -> bool:
        return self._conn.our_state is _SWITCHED

    def trailing(self) -> bytes:
        data: bytes = self._conn.trailing_data[0]
        return data

    # -- sending -------------------------------------------------------------------

    def send_continue(self) -> bytes:
        if not self._conn.they_are_waiting_for_100_continue:
            return b""
        return self._send(_CONTINUE)

    def send_request(
        self,
        method: bytes,
        target: bytes,
        headers: RawHeaders,
        out: list[bytes],
        end: End | None = None,
    ) -> None:
        """A request head; ``method``/``target`` as parsed, one Host among ``headers``.
        With ``end`` the message ends right there (no body), in the same call."""
        conn = self._conn
        try:
            parts = conn.send_with_data_passthrough(h11fast.request(method, target, headers))
            if end is not None:
                more = conn.send_with_data_passthrough(
                    _EndOfMessage(headers=end.trailers) if end.trailers else _EOM
                )
        except h11.LocalProtocolError as exc:
            raise _cannot(exc) from exc
        if parts:
            out += parts
        if end is not None and more:
            out += more

    def send_response(
        self, status: int, reason: bytes, items: HeaderItems, out: list[bytes]
    ) -> None:
        """A response head (1xx included) from parsed or proxy-made ``items``."""
        if status < 200:
            event: h11.Event = h11fast.informational(status, reason, items)
        else:
            event = h11fast.response(status, reason, items)
        try:
            parts = self._conn.send_with_data_passthrough(event)
        except h11.LocalProtocolError as exc:
            raise _cannot(exc) from exc
        if parts:
            out += parts

    def send_local(self, status: int, reason: bytes, headers: RawHeaders, out: list[bytes]) -> None:
        """A response head the proxy makes up, checked by h11's public constructor."""
        self._extend(h11.Response(status_code=status, reason=reason, headers=headers), out)

    def send_data(self, data: bytes | bytearray, out: list[bytes]) -> None:
        event = h11fast.data(data)
        try:
            parts = self._conn.send_with_data_passthrough(event)
        except h11.LocalProtocolError as exc:
            raise _cannot(exc) from exc
        if parts:
            out += parts

    def send_end(self, end: End, out: list[bytes]) -> None:
        event = _EndOfMessage(headers=end.trailers) if end.trailers else _EOM
        try:
            parts = self._conn.send_with_data_passthrough(event)
        except h11.LocalProtocolError as exc:
            raise _cannot(exc) from exc
        if parts:
            out += parts

    def _extend(self, event: h11.Event, out: list[bytes]) -> None:
        # ``send_with_data_passthrough`` is ``send`` without joining: the caller joins
        # a whole message's parts once. (The hot senders above inline this.)
        try:
            parts = self._conn.send_with_data_passthrough(event)
        except h11.LocalProtocolError as exc:
            raise _cannot(exc) from exc
        if parts:
            out += parts

    def _send(self, event: h11.Event) -> bytes:
        try:
            return self._conn.send(event) or b""
        except h11.LocalProtocolError as exc:
            raise _cannot(exc) from exc

    # -- keep-alive ----------------------------------------------------------------

    def next_message(self) -> bool:
        conn = self._conn
        if conn.our_state is not _DONE or conn.their_state is not _DONE:
            return False
        if self.role is Role.CLIENT and conn.trailing_data[0]:
            return False  # bytes beyond the response: the upstream is confused
        conn.start_next_cycle()
        self._head_next = True
        return True


def _cannot(exc: h11.LocalProtocolError) -> ProtocolError:
    return ProtocolError(f"cannot send this now: {exc}", 500)
