"""The HTTP/1 corpus's response cases: heads and framing, 1xx, 204, 304, HEAD, close.

Responses are judged in the client role, after a request whose ``method`` is GET
unless a case says HEAD or CONNECT (which change where a response's body ends).
"""

from __future__ import annotations

from collections.abc import Iterator

from tests.support.corpus_cases import CTLS, OK, response


def response_framing() -> Iterator[tuple[str, bytes]]:
    body = b"5\r\nhello\r\n0\r\n\r\n"
    for value in (b"chunked", b"Chunked", b"gzip, chunked", b"chunked, gzip", b"gzip", b""):
        yield f"response TE {value!r}", response(b"Transfer-Encoding: " + value, body=body)
    yield (
        "response both CL and TE",
        response(b"Content-Length: 5", b"Transfer-Encoding: chunked", body=body),
    )
    for value in (b"5, 5", b"5,6", b"-1", b"99999999999999999999", b" 5"):
        yield f"response CL {value!r}", response(b"Content-Length: " + value, body=b"hello")
    yield (
        "response TE on HTTP/1.0",
        response(b"Transfer-Encoding: chunked", body=body, line=b"HTTP/1.0 200 OK"),
    )


def reasons() -> Iterator[tuple[str, bytes]]:
    for byte in CTLS:
        yield f"CTL {byte:#04x} in reason", OK.replace(b"OK", b"O" + bytes([byte]) + b"K", 1)
    for label, line in (
        ("no reason", b"HTTP/1.1 200"),
        ("empty reason", b"HTTP/1.1 200 "),
        ("two spaces before reason", b"HTTP/1.1 200  OK"),
        ("obs-text reason", b"HTTP/1.1 200 D\xe9j\xe0"),
        ("HTAB in reason", b"HTTP/1.1 200 A\tB"),
        ("two spaces before status", b"HTTP/1.1  200 OK"),
        ("two-digit status", b"HTTP/1.1 20 OK"),
        ("four-digit status", b"HTTP/1.1 2000 OK"),
        ("status 099", b"HTTP/1.1 099 OK"),
        ("status 600", b"HTTP/1.1 600 Weird"),
        ("status 999", b"HTTP/1.1 999 Weird"),
        ("HTTP/1.0", b"HTTP/1.0 200 OK"),
        ("HTTP/2.0", b"HTTP/2.0 200 OK"),
        ("HTTP/0.9", b"HTTP/0.9 200 OK"),
        ("HTTP/1.2", b"HTTP/1.2 200 OK"),
        ("lowercase http", b"http/1.1 200 OK"),
        ("RTSP", b"RTSP/1.0 200 OK"),
        ("ICE", b"ICE/1.0 200 OK"),
    ):
        yield label, response(b"Content-Length: 2", body=b"hi", line=line)


def responses() -> Iterator[tuple[str, bytes, str]]:
    for status in (100, 102, 103, 150, 199):
        yield f"{status} then 200", response(line=b"HTTP/1.1 %d Info" % status) + OK, "GET"
    yield (
        "150 with a body",
        response(b"Content-Length: 2", body=b"hi", line=b"HTTP/1.1 150 X") + OK,
        "GET",
    )
    yield "101 without asking", response(b"Upgrade: x", line=b"HTTP/1.1 101 Switching"), "GET"
    for status in (204, 304):
        line = b"HTTP/1.1 %d X" % status
        yield f"{status}", response(line=line), "GET"
        yield f"{status} with CL", response(b"Content-Length: 2", line=line), "GET"
        yield (
            f"{status} with body bytes",
            response(b"Content-Length: 2", line=line, body=b"hi"),
            "GET",
        )
        yield f"{status} chunked", response(b"Transfer-Encoding: chunked", line=line), "GET"
    yield "HEAD with CL", response(b"Content-Length: 5"), "HEAD"
    yield "HEAD with TE", response(b"Transfer-Encoding: chunked"), "HEAD"
    yield "HEAD without framing", response(), "HEAD"
    yield "HEAD with body bytes", response(b"Content-Length: 5", body=b"hello"), "HEAD"
    yield "HEAD then another", response(b"Content-Length: 5") + OK, "HEAD"
    yield "CONNECT 200", response(body=b"tunnel"), "CONNECT"
    yield "CONNECT 407", response(b"Content-Length: 0", line=b"HTTP/1.1 407 Auth"), "CONNECT"
    yield "close-delimited", response(body=b"until the end"), "GET"
    yield "close-delimited HTTP/1.0", response(body=b"old", line=b"HTTP/1.0 200 OK"), "GET"
    yield "close-delimited, keep-alive asked", response(b"Connection: keep-alive", body=b"x"), "GET"
    yield "empty close-delimited", response(), "GET"
    yield (
        "Connection: close",
        response(b"Content-Length: 2", b"Connection: close", body=b"hi"),
        "GET",
    )
    yield (
        "HTTP/1.0 with CL",
        response(b"Content-Length: 2", body=b"hi", line=b"HTTP/1.0 200 OK"),
        "GET",
    )
    yield "two responses", OK + OK, "GET"
    yield "bytes past the response", OK + b"junk", "GET"
    yield (
        "chunked response",
        response(b"Transfer-Encoding: chunked", body=b"2\r\nhi\r\n0\r\n\r\n"),
        "GET",
    )
    yield (
        "chunked response cut",
        response(b"Transfer-Encoding: chunked", body=b"2\r\nhi\r\n"),
        "GET",
    )
    yield "CL response cut", response(b"Content-Length: 9", body=b"hi"), "GET"
    yield "response head cut", OK[:20], "GET"
    yield "no response at all", b"", "GET"
    yield "response with leading CRLF", b"\r\n" + OK, "GET"
    yield "response obs-fold", response(b"Content-Length: 2", b"X: a", b" b", body=b"hi"), "GET"
    yield "response bare LF", OK.replace(b"\r\n", b"\n"), "GET"
    yield "response with Host twice", response(b"Host: a", b"Host: b", b"Content-Length: 0"), "GET"
