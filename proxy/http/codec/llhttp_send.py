"""The llhttp codec's sending side: heads and bodies out, as h11 writes them.

``LlhttpCodec`` (``llhttp``) is this class plus the receiving side; both keep one
``h1state`` machine. The usual keep-alive exchange takes fast paths that set both
states directly (see ``llhttp``); ``FAST = False`` turns them off on both sides, so
tests can hold both paths to the same results.
"""

from __future__ import annotations

from typing import Final

from proxy.http.codec import h1write
from proxy.http.codec.base import End, HeaderItems, ProtocolError, RawHeaders, Role
from proxy.http.codec.h1state import DONE, IDLE, SEND_BODY, SEND_RESPONSE, Ev, Machine

FAST = True  # False: every event through the machine, sent and received
_REQUEST: Final = Ev.REQUEST
_INFORMATIONAL: Final = Ev.INFORMATIONAL
_RESPONSE: Final = Ev.RESPONSE
_DATA: Final = Ev.DATA
_END: Final = Ev.END
_W_LENGTH: Final = h1write.LENGTH
_CONTINUE: Final = b"HTTP/1.1 100 \r\n\r\n"  # h11's, byte for byte


class LlhttpSender:
    """One connection's machine and what the proxy sends on it, in one role."""

    __slots__ = ("_m", "_method", "_server", "_version", "_waiting", "_wkind", "_wleft", "role")

    def __init__(self, role: Role) -> None:
        self.role = role
        self._server = role is Role.SERVER  # read per event: a plain bool is quicker
        self._m = Machine()
        self._method: bytes | None = None  # this exchange's request method
        self._version: bytes | None = None  # the version the peer spoke last
        self._waiting = False  # a client waits for 100-continue
        self._wkind = _W_LENGTH  # how the body we send is framed (``h1write``)
        self._wleft = 0  # bytes left of the Content-Length body we send

    @property
    def waiting_for_continue(self) -> bool:
        return self._waiting and self._server

    def _our_event(self, event: Ev, status: int = 0) -> None:
        m = self._m
        try:
            if self._server:
                m.server_event(event, status)
            else:
                m.client_event(event)
        except ProtocolError as exc:
            m.fail(not self._server)
            raise ProtocolError(f"cannot send this now: {exc}", 500) from exc

    def send_continue(self) -> bytes:
        if not self.waiting_for_continue:
            return b""
        self._our_event(_INFORMATIONAL, 100)
        self._waiting = False
        return _CONTINUE

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
        m = self._m
        start = b"%s %s HTTP/1.1\r\n" % (method, target)
        usual = None
        if m.client is IDLE and m.server is IDLE and method != b"CONNECT" and FAST:
            usual = h1write.usual_request(start, headers)
        if usual is not None:
            # h11's move from (IDLE, IDLE), nothing proposed, no close: nothing else moves
            m.client, m.server = SEND_BODY, SEND_RESPONSE
            self._method = method
            self._wkind, self._wleft = _W_LENGTH, usual[1]
            out.append(usual[0])
        else:
            self._request_by_rules(method, start, headers, out)
        if end is not None:
            self.send_end(end, out)

    def _request_by_rules(
        self, method: bytes, start: bytes, headers: RawHeaders, out: list[bytes]
    ) -> None:
        items = [(name, name.lower(), value) for name, value in headers]
        m = self._m
        if method == b"CONNECT":
            m.connect = True
        if h1write.comma_values(items, b"upgrade"):
            m.upgrade = True
        self._our_event(_REQUEST)
        self._method = method
        if b"close" in h1write.comma_values(items, b"connection"):
            m.no_keep_alive()
        kind, length = h1write.framing(method, 0, items)
        self._wkind, self._wleft = h1write.kind(kind), length
        out.append(h1write.head(start, items))

    def send_response(
        self, status: int, reason: bytes, items: HeaderItems, out: list[bytes]
    ) -> None:
        """A response head (1xx included) from parsed or proxy-made ``items``."""
        m = self._m
        start = b"HTTP/1.1 %d %s\r\n" % (status, reason)
        if (
            status >= 200
            and m.server is SEND_RESPONSE
            and m.keep_alive
            and not (m.upgrade or m.connect)
            and FAST
        ):
            usual = h1write.usual_response(start, items)
            if usual is not None:
                # ``final_headers`` keeps such a head as it is, and h11's machine makes
                # the one move SEND_BODY (nothing proposed to drop, nothing to close).
                m.server = SEND_BODY
                method = self._method
                if (
                    status in (204, 304)
                    or method == b"HEAD"
                    or (method == b"CONNECT" and status < 300)
                ):
                    self._wkind, self._wleft = _W_LENGTH, 0  # ``framing``: no body
                else:
                    self._wkind, self._wleft = _W_LENGTH, usual[1]
                self._waiting = False
                out.append(usual[0])
                return
        if status < 200:
            self._our_event(_INFORMATIONAL, status)
        else:
            items = h1write.final_headers(items, status, self._method, self._version, m.keep_alive)
            self._our_event(_RESPONSE, status)
            kind, length, close = h1write.scan(self._method, status, items)
            if close:
                m.no_keep_alive()
            self._wkind, self._wleft = h1write.kind(kind), length
        self._waiting = False
        out.append(h1write.head(start, items))

    def send_local(self, status: int, reason: bytes, headers: RawHeaders, out: list[bytes]) -> None:
        """A response head the proxy makes up, checked against the grammar first."""
        if not 200 <= status < 1000:
            raise ProtocolError(f"status {status} is not a final response", 500)
        self.send_response(status, reason, h1write.checked(headers), out)

    def send_data(self, data: bytes | bytearray, out: list[bytes]) -> None:
        m = self._m
        if self._wkind == _W_LENGTH and FAST:
            # In SEND_BODY, Data moves nothing: only the length needs checking.
            left = self._wleft - len(data)
            if left >= 0 and (m.server if self._server else m.client) is SEND_BODY:
                self._wleft = left
                out.append(data)  # type: ignore[arg-type]  # a bytearray is written as it is
                return
        self._our_event(_DATA)
        try:
            self._wleft = h1write.data(self._wkind, self._wleft, data, out)
        except ProtocolError:
            m.fail(not self._server)
            raise

    def send_end(self, end: End, out: list[bytes]) -> None:
        m = self._m
        if self._wkind == _W_LENGTH and not self._wleft and not end.trailers and FAST:
            # The one move DONE: keep-alive, nothing proposed, the peer still at it.
            if self._server:
                if m.server is SEND_BODY and m.keep_alive and m.client is DONE:
                    m.server = DONE
                    return
            elif (
                m.client is SEND_BODY
                and m.keep_alive
                and not (m.upgrade or m.connect)
                and m.server is SEND_RESPONSE
            ):
                m.client = DONE
                return
        self._our_event(_END)
        try:
            h1write.end(self._wkind, self._wleft, end.trailers, out)
        except ProtocolError:
            m.fail(not self._server)
            raise
