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

from proxy.http.codec.base import HeaderItems, ProtocolError, RawHeaders

_SEP = b": "
_CRLF = b"\r\n"
_TOKEN = re.compile(rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")
_VALUE = re.compile(rb"(?:[^\x00\s]+(?:[ \t]+[^\x00\s]+)*)?")


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


class LengthWriter:
    __slots__ = ("left",)

    def __init__(self, length: int) -> None:
        self.left = length

    def data(self, data: bytes | bytearray, out: list[bytes]) -> None:
        self.left -= len(data)
        if self.left < 0:
            raise ProtocolError("too much data for the declared Content-Length", 500)
        out.append(data)  # type: ignore[arg-type]  # a bytearray is written as it is

    def end(self, trailers: RawHeaders, out: list[bytes]) -> None:
        if self.left:
            raise ProtocolError("too little data for the declared Content-Length", 500)
        if trailers:
            raise ProtocolError("Content-Length and trailers don't mix", 500)


class ChunkedWriter:
    __slots__ = ()

    def data(self, data: bytes | bytearray, out: list[bytes]) -> None:
        if data:
            out += (b"%x\r\n" % len(data), data, _CRLF)  # type: ignore[arg-type]

    def end(self, trailers: RawHeaders, out: list[bytes]) -> None:
        out.append(head(b"0\r\n", [(n, n.lower(), v) for n, v in trailers]))


class CloseWriter:
    __slots__ = ()

    def data(self, data: bytes | bytearray, out: list[bytes]) -> None:
        out.append(data)  # type: ignore[arg-type]

    def end(self, trailers: RawHeaders, out: list[bytes]) -> None:
        if trailers:
            raise ProtocolError("can't send trailers to an HTTP/1.0 client", 500)


Writer = LengthWriter | ChunkedWriter | CloseWriter


def writer(kind: str, length: int) -> Writer:
    if kind == "chunked":
        return ChunkedWriter()
    if kind == "close":
        return CloseWriter()
    return LengthWriter(length)
