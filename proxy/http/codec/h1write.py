"""Outgoing HTTP/1 heads and bodies for the llhttp codec, byte for byte what h11 writes.

Heads are built by joining the parts once (no per-header formatting); Host goes first
as h11 puts it. ``final_headers`` is h11's last word on a final response's framing
(h11/_connection.py ``_clean_up_response_headers_for_sending``): a body of unknown
length is chunked for an HTTP/1.1 peer and delimited by close for anyone else, and
``Connection: close`` is added whenever the connection will not be kept alive.
Body writers are three small classes, one per framing; they raise ``ProtocolError``
(status 500) when the engine sends more or less than the head announced.
"""

from __future__ import annotations

import re
from typing import Final

from proxy.http.codec.base import HeaderItems, ProtocolError, RawHeaders, lowered

_SEP: Final = b": "
_CRLF: Final = b"\r\n"
_TOKEN: Final = re.compile(rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")
_VALUE: Final = re.compile(rb"(?:[^\x00\s]+(?:[ \t]+[^\x00\s]+)*)?")


def head(start: bytes, items: HeaderItems) -> bytes:
    """The start line (with its CRLF), the fields (Host first) and the blank line."""
    parts = [start]
    host_at = 1
    for name, lower, value in items:
        if lower == b"host":
            parts[host_at:host_at] = (name, _SEP, value, _CRLF)
            host_at += 4
        else:
            parts += (name, _SEP, value, _CRLF)
    parts.append(_CRLF)
    return b"".join(parts)


# Names that take a head off the usual path (Host only moves first).
_SPECIAL: Final = frozenset(
    (b"host", b"content-length", b"transfer-encoding", b"connection", b"upgrade")
)


def usual_request(start: bytes, headers: RawHeaders) -> tuple[bytes, int] | None:
    """``head`` and the body length of a request whose only framing or connection
    header is at most one numeric Content-Length, in one pass; None for any other
    (``framing`` and ``comma_values`` then decide step by step)."""
    parts = [start]
    host_at = 1
    length = 0  # no Content-Length: no body (h11's rule for a request)
    seen = False
    for name, value in headers:
        lower = lowered(name)
        if lower in _SPECIAL:
            if lower == b"host":
                parts[host_at:host_at] = (name, _SEP, value, _CRLF)
                host_at += 4
                continue
            if lower != b"content-length" or seen or not value.isdigit():
                return None
            seen = True
            length = int(value)
        parts += (name, _SEP, value, _CRLF)
    parts.append(_CRLF)
    return b"".join(parts), length


def usual_response(start: bytes, items: HeaderItems) -> tuple[bytes, int] | None:
    """``head`` and the Content-Length of a final response that carries exactly one
    numeric Content-Length and no other framing or connection header, in one pass;
    None for any other (then ``final_headers`` and ``scan`` decide)."""
    parts = [start]
    host_at = 1
    length = -1
    for name, lower, value in items:
        if lower in _SPECIAL:
            if lower == b"host":
                parts[host_at:host_at] = (name, _SEP, value, _CRLF)
                host_at += 4
                continue
            if lower != b"content-length" or length >= 0 or not value.isdigit():
                return None
            length = int(value)
        parts += (name, _SEP, value, _CRLF)
    if length < 0:
        return None
    parts.append(_CRLF)
    return b"".join(parts), length


def comma_values(items: HeaderItems, name: bytes) -> list[bytes]:
    """h11's ``get_comma_header``: every non-empty, lowercased, comma-separated value."""
    out: list[bytes] = []
    for _, lower, value in items:
        if lower == name:
            out += [v.strip() for v in value.lower().split(b",") if v.strip()]
    return out


def final_headers(
    items: HeaderItems,
    status: int,
    method: bytes | None,
    peer_version: bytes | None,
    keep_alive: bool,
) -> HeaderItems:
    """A final response's headers as h11 would send them (see the module docstring)."""
    if keep_alive:
        for _, lower, _ in items:
            if lower == b"content-length":
                return items  # the usual case: a known length, kept alive, nothing to do
    kind, _ = framing(b"GET" if method == b"HEAD" else method, status, items)
    close = not keep_alive
    if kind != "length":
        items = [item for item in items if item[1] != b"content-length"]
        items = [item for item in items if item[1] != b"transfer-encoding"]
        if peer_version is None or peer_version < b"1.1":
            close = close or method != b"HEAD"
        else:
            items.append((b"Transfer-Encoding", b"transfer-encoding", b"chunked"))
    if close:
        tokens = set(comma_values(items, b"connection"))
        tokens.discard(b"keep-alive")
        tokens.add(b"close")
        items = [item for item in items if item[1] != b"connection"]
        items += [(b"Connection", b"connection", token) for token in sorted(tokens)]
    return items


def framing(method: bytes | None, status: int, items: HeaderItems) -> tuple[str, int]:
    """h11's ``_body_framing`` for a final response (``status`` 0: a request)."""
    if status and (
        status in (204, 304) or method == b"HEAD" or (method == b"CONNECT" and status < 300)
    ):
        return "length", 0
    if comma_values(items, b"transfer-encoding"):
        return "chunked", 0
    lengths = comma_values(items, b"content-length")
    if lengths:
        return "length", int(lengths[0])
    return ("length", 0) if not status else ("close", 0)


def scan(method: bytes | None, status: int, items: HeaderItems) -> tuple[str, int, bool]:
    """``framing`` and whether ``Connection`` says close, in one pass for the usual head."""
    length = -1
    other = False
    for _, lower, value in items:
        if lower == b"content-length" and length < 0 and value.isdigit():
            length = int(value)
        elif lower == b"transfer-encoding" or lower == b"connection":
            other = True
    if other or length < 0:  # anything unusual: h11's own rules, step by step
        kind, length = framing(method, status, items)
        return kind, length, b"close" in comma_values(items, b"connection")
    if status in (204, 304) or method == b"HEAD" or (method == b"CONNECT" and status < 300):
        return "length", 0, False
    return "length", length, False


def checked(headers: RawHeaders) -> HeaderItems:
    """Headers the proxy made up, checked against the grammar as h11's constructors do."""
    items: HeaderItems = []
    for name, value in headers:
        if _TOKEN.fullmatch(name) is None or _VALUE.fullmatch(value) is None:
            raise ProtocolError(f"cannot send the header {name!r}: {value!r}", 500)
        items.append((name, name.lower(), value))
    return items


# How the body of the message being sent is framed (the codec keeps one of these
# and the bytes left of a Content-Length body: no writer object per message).
LENGTH: Final = 0
CHUNKED: Final = 1
CLOSE: Final = 2
_KINDS: Final = {"length": LENGTH, "chunked": CHUNKED, "close": CLOSE}


def kind(name: str) -> int:
    """``framing``'s kind as one of LENGTH, CHUNKED, CLOSE."""
    return _KINDS[name]


def data(kind: int, left: int, data: bytes | bytearray, out: list[bytes]) -> int:
    """Append one body chunk framed as ``kind``; the bytes left of a Content-Length."""
    if kind == CHUNKED:
        if data:
            out += (b"%x\r\n" % len(data), data, _CRLF)  # type: ignore[arg-type]
        return left
    if kind == LENGTH:
        left -= len(data)
        if left < 0:
            raise ProtocolError("too much data for the declared Content-Length", 500)
    out.append(data)  # type: ignore[arg-type]  # a bytearray is written as it is
    return left


def end(kind: int, left: int, trailers: RawHeaders, out: list[bytes]) -> None:
    """Append the end of a body framed as ``kind`` (h11's checks, h11's bytes)."""
    if kind == CHUNKED:
        out.append(head(b"0\r\n", [(n, n.lower(), v) for n, v in trailers]))
    elif kind == LENGTH:
        if left:
            raise ProtocolError("too little data for the declared Content-Length", 500)
        if trailers:
            raise ProtocolError("Content-Length and trailers don't mix", 500)
    elif trailers:
        raise ProtocolError("can't send trailers to an HTTP/1.0 client", 500)
