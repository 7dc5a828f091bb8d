"""The codec seam: what the HTTP engine may ask of one HTTP connection's protocol state.

A codec is sans-I/O (h11's model): bytes go in with ``feed``, events come out of
``next_event``, and ``send_*`` turn outgoing messages into bytes for the caller to
write. The engine never sees a codec library's own types; it sees the neutral
events below. One codec object serves one connection in one ``Role``.

The rules every codec keeps (the engine relies on each of them):

1. Events, in order, per message: one head (``Request`` in the server role,
   ``Response`` in the client role, preceded by any number of ``Response`` heads
   with a 1xx status), then body chunks as ``bytes`` or ``bytearray`` (never empty;
   a parser's own buffer slices go up without a copy), then one
   ``End`` (``END`` when there are no trailers). ``NEED_DATA``: feed more bytes.
   ``PAUSED``: a message ended and the next one waits until ``next_message``.
   ``CLOSED``: the peer closed cleanly between messages.
2. Heads carry the headers as received: ``items`` are ``(name as sent, lowercase
   name, value)``, the lowercase name computed once by the codec. Framing is the
   codec's job both ways: the engine sends ``Content-Length`` or
   ``Transfer-Encoding: chunked`` as it wants them, the codec frames the body to
   match, and for HTTP/1.0 peers it picks what that peer understands.
3. Anything the peer sends that is not valid HTTP, or that the codec will not
   accept (ambiguous framing, oversize heads), raises ``ProtocolError`` carrying the
   status to answer: 400, 413, 431 or 501. End of input in the middle of a message
   raises it too, with ``truncated`` set. After a ``ProtocolError`` the connection
   is unusable.
4. Keep-alive is the codec's to judge from both sides' headers and versions:
   ``next_message`` returns True when the connection may carry another message
   exchange, and prepares for it; False means close it. In the client role it is
   also False when bytes arrived past the response (the upstream is confused).
5. ``Expect: 100-continue``: ``waiting_for_continue`` is True while the client
   waits; ``send_continue`` answers it (once). A final response sent first cancels
   the expectation.
6. Upgrade: after a 101 response has been sent (server role) or received (client
   role), ``switched`` is True, no more events come, and ``trailing`` holds the bytes
   received past the head; the connection is a byte tunnel from then on.
7. ``send_*`` raise ``ProtocolError`` (status 500 never reaches the peer; the engine
   closes) when asked for something the connection's state does not allow, such
   as a response while the request head has not arrived.

Only values that came out of a codec's parser, or that the proxy made itself from
fixed names and digits, are written without a second grammar check; anything else
(headers from configuration) is checked by the codec before it reaches the wire.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Final, Protocol

# A message's headers as received: (name as sent, lowercase name, value).
HeaderItems = list[tuple[bytes, bytes, bytes]]
# Headers to send: (name, value), the name with the casing it should go out with.
RawHeaders = list[tuple[bytes, bytes]]


class Role(enum.Enum):
    SERVER = "server"  # towards the app's client: reads requests, writes responses
    CLIENT = "client"  # towards an upstream: writes requests, reads responses


class _Marker:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


NEED_DATA: Final = _Marker("NEED_DATA")
PAUSED: Final = _Marker("PAUSED")
CLOSED: Final = _Marker("CLOSED")


# Header names seen, lowercased: a dict lookup costs a compiled caller less than the
# method call. Bounded in count and in name length, so hostile heads cannot grow it;
# past the bound names are lowercased as before.
_LOWER: Final[dict[bytes, bytes]] = {}
_LOWER_MAX: Final = 1024
_LOWER_NAME_MAX: Final = 64


def lowered(name: bytes) -> bytes:
    """``name.lower()``, from the cache of names seen when it is there."""
    lower = _LOWER.get(name)
    if lower is None:
        lower = name.lower()
        if len(name) <= _LOWER_NAME_MAX and len(_LOWER) < _LOWER_MAX:
            _LOWER[name] = lower
    return lower


class Request:
    """A request head as received. Plain slots, not a dataclass: one per request."""

    __slots__ = ("items", "method", "target", "version")

    def __init__(self, method: bytes, target: bytes, version: bytes, items: HeaderItems) -> None:
        self.method = method
        self.target = target
        self.version = version  # b"1.1" or b"1.0"
        self.items = items


class Response:
    """A response head as received; ``status`` < 200 is an informational one."""

    __slots__ = ("items", "reason", "status", "version")

    def __init__(self, status: int, reason: bytes, version: bytes, items: HeaderItems) -> None:
        self.status = status
        self.reason = reason
        self.version = version
        self.items = items


class End:
    """The end of a message, with its trailers (usually none: ``END``)."""

    __slots__ = ("trailers",)

    def __init__(self, trailers: RawHeaders) -> None:
        self.trailers = trailers


END: Final = End([])

Event = Request | Response | bytes | bytearray | End | _Marker


class ProtocolError(Exception):
    """The peer broke HTTP (or a limit); ``status`` is what to answer a client with."""

    def __init__(self, message: str, status: int = 400, *, truncated: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.truncated = truncated  # the peer closed in the middle of a message


class Codec(Protocol):
    """One HTTP connection's protocol state in one role (see the rules above)."""

    # Bytes read from the socket; ``b""`` when the peer closed its side. An attribute,
    # so that a codec can hand out its library's own method with no wrapper call.
    feed: Callable[[bytes], None]

    def next_event(self) -> Event:
        """The next event from what was fed (``NEED_DATA`` if it needs more)."""

    @property
    def buffered(self) -> bool:
        """Bytes were fed that no event has consumed yet (worth a ``next_event``)."""

    @property
    def peer_version(self) -> bytes | None:
        """The HTTP version the peer spoke last (b"1.1", b"1.0"), None before any."""

    @property
    def waiting_for_continue(self) -> bool: ...

    @property
    def switched(self) -> bool: ...

    def trailing(self) -> bytes:
        """After an upgrade: the bytes received past the head."""

    def send_continue(self) -> bytes: ...

    def send_request(
        self,
        method: bytes,
        target: bytes,
        headers: RawHeaders,
        out: list[bytes],
        end: End | None = None,
    ) -> None:
        """Append a request head's bytes to ``out`` (client role; rule 2 on framing);
        with ``end``, the message ends with the head (one call for a body-less one)."""

    def send_response(
        self, status: int, reason: bytes, items: HeaderItems, out: list[bytes]
    ) -> None:
        """Append a response head's bytes (1xx included) to ``out`` (server role)."""

    def send_local(self, status: int, reason: bytes, headers: RawHeaders, out: list[bytes]) -> None:
        """A response head the proxy makes up; checked against the grammar first."""

    def send_data(self, data: bytes | bytearray, out: list[bytes]) -> None: ...

    def send_end(self, end: End, out: list[bytes]) -> None: ...

    def next_message(self) -> bool:
        """Both sides finished cleanly and may go on: get ready for the next message."""


DEFAULT_MAX_HEAD: Final = 64 * 1024  # bytes of a received head, as Envoy's 60 KiB


class CodecFactory(Protocol):
    """Makes a codec for one connection; ``max_head`` bounds a received head."""

    def __call__(self, role: Role, *, max_head: int = DEFAULT_MAX_HEAD) -> Codec: ...
