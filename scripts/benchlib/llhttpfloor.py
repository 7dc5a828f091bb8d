"""What llhttp alone costs per proxied request: the floor of any httptools-based L7 proxy.

The same exchange as ``h11floor`` (the request wrk sends, nginx's answer): one request
and one response parsed by httptools' parsers, their callbacks collecting what a codec
must hand up (target, headers as (name, lowercase name, value), body chunks), and the
two heads the proxy forwards joined back into bytes. No I/O, no routing, warm caches:
a floor, printed next to ``h11 alone`` so the two codecs' own shares can be compared.
"""

from __future__ import annotations

import time

import httptools

_HOP = frozenset({b"connection", b"keep-alive", b"transfer-encoding", b"upgrade", b"te"})
REQUEST_ID = b"x-request-id: 00000000-0000-4000-8000-000000000000\r\n"


class Collected:
    """One message as the callbacks give it; reused message after message."""

    __slots__ = ("body", "done", "headers", "reason", "url")

    def __init__(self) -> None:
        self.url = self.reason = b""
        self.headers: list[tuple[bytes, bytes, bytes]] = []
        self.body: list[bytes] = []
        self.done = False

    def on_message_begin(self) -> None:
        self.url = self.reason = b""
        self.headers = []
        self.body = []
        self.done = False

    def on_url(self, url: bytes) -> None:
        self.url += url  # llhttp may hand a long target over in pieces

    def on_status(self, status: bytes) -> None:
        self.reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, name.lower(), value))

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.done = True


class Exchange:
    """Both sides' parsers, kept alive across exchanges as on keep-alive connections."""

    def __init__(self) -> None:
        self.request, self.response = Collected(), Collected()
        self.down = httptools.HttpRequestParser(self.request)
        self.up = httptools.HttpResponseParser(self.response)

    def one(self, request: bytes, response: bytes) -> tuple[bytes, bytes]:
        """One proxied exchange: the bytes it sends upstream and back to the client."""
        got = self.request
        self.down.feed_data(request)
        if not got.done:
            raise ValueError("the request did not end in the bytes given")
        parts = [self.down.get_method(), b" ", got.url, b" HTTP/1.1\r\n"]
        for name, lower, value in got.headers:
            if lower not in _HOP:
                parts += (name, b": ", value, b"\r\n")
        parts += (REQUEST_ID, b"\r\n", *got.body)
        upstream = b"".join(parts)
        reply = self.response
        self.up.feed_data(response)
        if not reply.done:
            raise ValueError("the response did not end in the bytes given")
        status = self.up.get_status_code()
        parts = [b"HTTP/1.1 %d " % status, reply.reason, b"\r\n"]
        chunked = False
        for name, lower, value in reply.headers:
            if lower not in _HOP:
                parts += (name, b": ", value, b"\r\n")
            elif lower == b"transfer-encoding":
                chunked = True
        if chunked:  # re-framed the way it came: one chunk per piece the parser gave
            parts.append(b"Transfer-Encoding: chunked\r\n\r\n")
            for piece in reply.body:
                parts += (b"%x\r\n" % len(piece), piece, b"\r\n")
            parts.append(b"0\r\n\r\n")
        else:
            parts += (b"\r\n", *reply.body)
        return upstream, b"".join(parts)


def cpu_us_per_request(request: bytes, response: bytes, count: int = 20000) -> float:
    """CPU microseconds per exchange, median of three runs of ``count``."""
    exchange = Exchange()
    for _ in range(count // 10):  # warm-up
        exchange.one(request, response)
    runs = []
    for _ in range(3):
        started = time.process_time()
        for _ in range(count):
            exchange.one(request, response)
        runs.append((time.process_time() - started) / count * 1e6)
    return sorted(runs)[1]
