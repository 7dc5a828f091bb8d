"""The llhttp codec: httptools (llhttp, Node.js's C parser) behind the seam (``codec.base``).

llhttp parses and checks every head, the costly part of HTTP/1, in C; this adapter
cuts the heads out of the stream at h11's blank line and frames bodies itself, because
httptools reports no byte offsets and could not say where a pipelined message, a
HEAD response's successor or an upgraded stream begins. Where llhttp objects, or a
cheap check finds something llhttp lets through, ``h1grammar`` gives the verdict, so
every input gets the h11 codec's verdict. Keep-alive, upgrade and error rules come
from ``h1state`` (h11's machine); bytes out are what h11 writes (``h1write``).

The usual keep-alive exchange (a request, a final response with a Content-Length,
nothing proposed, nobody closing) takes fast paths that set both states directly:
each is guarded by the conditions under which h11's machine (``Machine`` and its
``settle``) would make exactly that move and nothing else, and anything unusual
goes through the machine. ``llhttp_send.FAST`` turns them off, so tests can hold both
paths to the same results. Sending is ``llhttp_send.LlhttpSender``, the base class.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from proxy.http.codec import h1grammar, llhttp_send
from proxy.http.codec.base import (
    CLOSED,
    DEFAULT_MAX_HEAD,
    END,
    NEED_DATA,
    PAUSED,
    End,
    Event,
    ProtocolError,
    Role,
)
from proxy.http.codec.h1body import ChunkedReader
from proxy.http.codec.h1state import (
    DONE,
    ERROR,
    IDLE,
    MIGHT_SWITCH,
    SEND_BODY,
    SEND_RESPONSE,
    SWITCHED,
    Ev,
)
from proxy.http.codec.llhttp_head import HeadParser
from proxy.http.codec.llhttp_send import LlhttpSender

_LENGTH: Final = 0
_CHUNKED: Final = 1
_UNTIL_CLOSE: Final = 2
_REQUEST: Final = Ev.REQUEST
_INFORMATIONAL: Final = Ev.INFORMATIONAL
_RESPONSE: Final = Ev.RESPONSE
_END: Final = Ev.END
_CLOSED: Final = Ev.CLOSED


class LlhttpCodec(LlhttpSender):
    """One connection's HTTP/1 state in one role, heads parsed by llhttp."""

    __slots__ = ("_body", "_buf", "_chunks", "_eof", "_heads", "_left", "_max", "_scan", "feed")

    name: Final = "llhttp"

    def __init__(self, role: Role, *, max_head: int = DEFAULT_MAX_HEAD) -> None:
        super().__init__(role)
        self._max = max_head
        self._buf: bytes | bytearray = b""
        self._eof = False
        self._scan = 0  # where the search for the head's end resumes
        self._heads = HeadParser()
        self._body = _LENGTH  # how the peer's current body is framed
        self._left = 0  # bytes left of a Content-Length body
        self._chunks: ChunkedReader | None = None
        self.feed: Callable[[bytes], None] = self._feed

    def _feed(self, data: bytes) -> None:
        if not data:
            self._eof = True
        elif self._eof:
            raise RuntimeError("received close, then received more data?")
        elif not self._buf:
            self._buf = data
        else:
            if type(self._buf) is bytes:
                self._buf = bytearray(self._buf)
            self._buf += data

    # -- receiving -----------------------------------------------------------------

    def next_event(self) -> Event:
        m = self._m
        client_peer = self._server
        their = m.client if client_peer else m.server
        if their is SEND_BODY and self._body == _LENGTH and llhttp_send.FAST:
            # The usual body: slice it, or end it where h11's machine makes the one move
            # DONE (keep-alive, nothing proposed, the other side still at it or done).
            left = self._left
            if left:
                buf = self._buf
                if buf:
                    if len(buf) <= left:
                        data, self._buf = buf, b""
                    else:
                        data, self._buf = buf[:left], buf[left:]
                    self._left = left - len(data)
                    if client_peer:
                        self._waiting = False
                    return data
            elif m.keep_alive and not (m.upgrade or m.connect):
                if client_peer:
                    if m.server is SEND_RESPONSE:
                        self._waiting = False
                        m.client = DONE
                        return END
                elif m.client is DONE:
                    m.server = DONE
                    return END
        if their is ERROR:
            raise ProtocolError("can't receive data when peer state is ERROR")
        try:
            return self._next(their, client_peer)
        except ProtocolError:
            m.fail(client_peer)
            raise

    def _next(self, their: object, client_peer: bool) -> Event:
        buf = self._buf
        if their is DONE and buf:
            return PAUSED
        if their is MIGHT_SWITCH or their is SWITCHED:
            return PAUSED
        event: Event | None
        if their is SEND_BODY:
            event = self._read_body()
        elif their is IDLE or their is SEND_RESPONSE:
            event = self._read_head(client_peer) if buf else None
        elif buf:
            raise ProtocolError("got data when expecting EOF")
        else:
            event = None
        if event is None:
            if not self._buf and self._eof:
                return self._closed(their, client_peer)
            if len(self._buf) > self._max:
                raise ProtocolError("receive buffer too long", 431)
            if self._eof:
                raise ProtocolError("peer unexpectedly closed connection", truncated=True)
            return NEED_DATA
        return event

    def _closed(self, their: object, client_peer: bool) -> Event:
        if their is SEND_BODY:
            if self._body == _UNTIL_CLOSE:
                return self._end(END, client_peer)
            if self._body == _CHUNKED:
                raise ChunkedReader.eof()
            raise ProtocolError(
                "peer closed connection without sending complete message body", truncated=True
            )
        try:
            self._m.client_event(_CLOSED) if client_peer else self._m.server_event(_CLOSED)
        except ProtocolError as exc:
            exc.truncated = True
            raise
        return CLOSED

    def _read_head(self, client_peer: bool) -> Event | None:
        buf = self._buf
        end = h1grammar.head_end(buf, 0, self._scan)
        if end < 0:
            if buf[0] < 0x21:
                raise ProtocolError("illegal request line")
            self._scan = len(buf) - 2
            return None
        self._scan = 0
        if end > self._max:  # h11 checks only what it buffers: a whole head, too
            raise ProtocolError("head too long", 431)
        if end == len(buf):
            head, self._buf = buf, b""
        else:
            head, self._buf = buf[:end], buf[end:]
        m = self._m
        if client_peer:
            request = self._heads.request(bytes(head))
            method = request.method
            if method == b"CONNECT":
                m.connect = True
            parser = self._heads
            if parser.upgrade:
                m.upgrade = True
            if m.server is IDLE and llhttp_send.FAST:
                # h11's move from (IDLE, IDLE); its ``settle`` moves nothing from here
                m.client, m.server = SEND_BODY, SEND_RESPONSE
            else:
                m.client_event(_REQUEST)
            self._method = method
            self._version = request.version
            if parser.close or request.version != b"1.1":
                m.no_keep_alive()
            self._waiting = parser.expect and request.version != b"1.0"
            self._frame(parser.chunked, parser.length, False)
            return request
        response = self._heads.response(bytes(head))
        status = response.status
        if status < 200:
            m.server_event(_INFORMATIONAL, status)
            self._version = response.version
            self._waiting = False
            return response
        if m.server is SEND_RESPONSE and not (m.connect or m.upgrade) and llhttp_send.FAST:
            m.server = SEND_BODY  # nothing to accept or drop: ``settle`` moves nothing
        else:
            m.server_event(_RESPONSE, status)
        self._version = response.version
        parser = self._heads
        if parser.close or response.version != b"1.1":
            m.no_keep_alive()
        self._waiting = False
        sent = self._method
        if status in (204, 304) or sent == b"HEAD" or (sent == b"CONNECT" and status < 300):
            self._frame(False, 0, False)
        else:
            self._frame(parser.chunked, parser.length, parser.length < 0)
        return response

    def _frame(self, chunked: bool, length: int, until_close: bool) -> None:
        if chunked:
            self._body, self._chunks = _CHUNKED, ChunkedReader()
        elif until_close:
            self._body = _UNTIL_CLOSE
        else:
            self._body, self._left = _LENGTH, max(length, 0)

    def _read_body(self) -> Event | None:
        client_peer = self._server
        body = self._body
        buf = self._buf
        data: bytes | bytearray
        if body == _LENGTH:
            left = self._left
            if not left:
                return self._end(END, client_peer)
            if not buf:
                return None
            if len(buf) <= left:
                data, self._buf = buf, b""
            else:
                data, self._buf = buf[:left], buf[left:]
            self._left = left - len(data)
        elif body == _UNTIL_CLOSE:
            if not buf:
                return None
            data, self._buf = buf, b""
        else:
            assert self._chunks is not None
            event, used = self._chunks.read(buf)
            if used:
                self._buf = buf[used:]
            if event is None:
                return None
            if isinstance(event, End):
                return self._end(event, client_peer)
            data = event
        if client_peer:
            self._waiting = False
        return data

    def _end(self, end: End, client_peer: bool) -> End:
        if client_peer:
            self._waiting = False
            self._m.client_event(_END)
        else:
            self._m.server_event(_END)
        return end

    @property
    def buffered(self) -> bool:
        return bool(self._buf)

    @property
    def peer_version(self) -> bytes | None:
        return self._version

    @property
    def switched(self) -> bool:
        m = self._m
        return (m.server if self._server else m.client) is SWITCHED

    def trailing(self) -> bytes:
        return bytes(self._buf)

    # -- keep-alive ----------------------------------------------------------------

    def next_message(self) -> bool:
        m = self._m
        if m.client is not DONE or m.server is not DONE:
            return False
        if self._buf and not self._server:
            return False  # bytes beyond the response: the upstream is confused
        m.client = m.server = IDLE  # ``Machine.next_cycle``
        self._method = None
        return True
