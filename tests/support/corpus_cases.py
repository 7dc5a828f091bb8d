"""The HTTP/1 corpus's request cases: one generator per class of issue 14, each a
template and one variation per case.

Requests are judged in the server role; ``max_head`` lowers the head limit for the
size-limit class. Responses are in ``corpus_responses``; ``corpus_gen`` gathers both
and records the verdicts.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from proxy.http.codec.h1grammar import METHODS
from tests.support.http1_verdict import esc

Case = dict[str, Any]
GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
POST = b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
CHUNKED = b"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"
CTLS = [*range(0x00, 0x09), *range(0x0A, 0x20), 0x7F]


def request(*lines: bytes, body: bytes = b"", line: bytes = b"GET / HTTP/1.1") -> bytes:
    return b"\r\n".join([line, *lines]) + b"\r\n\r\n" + body


def response(*lines: bytes, body: bytes = b"", line: bytes = b"HTTP/1.1 200 OK") -> bytes:
    return request(*lines, body=body, line=line)


def valid() -> Iterator[tuple[str, bytes]]:
    for method in sorted(METHODS - {b"CONNECT"}):
        yield f"method {method.decode()}", request(b"Host: x", line=method + b" /m HTTP/1.1")
    yield "HTTP/1.0 without Host", b"GET / HTTP/1.0\r\n\r\n"
    yield "HTTP/1.0 keep-alive asked", b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
    yield "Connection: close", request(b"Host: x", b"Connection: close")
    yield "Connection: Close, TE", request(b"Host: x", b"Connection: TE, Close")
    yield "empty value", request(b"Host: x", b"X-Empty:")
    yield "obs-text value", request(b"Host: x", b"X-Latin: caf\xe9 \xff")
    yield "HTAB inside value", request(b"Host: x", b"X-Tab: a\tb")
    yield "OWS around value", request(b"Host: \t x \t ")
    yield "40 headers", request(b"Host: x", *[b"X-H%d: %d" % (i, i) for i in range(40)])
    yield "8 KiB value", request(b"Host: x", b"X-Big: " + b"v" * 8192)
    yield "query and fragment", request(b"Host: x", line=b"GET /a/b?c=d&e=%20#f HTTP/1.1")
    yield "mixed-case names", request(b"hOsT: x", b"CONTENT-length: 0")
    yield "POST with body", POST
    yield "POST with empty body", request(b"Host: x", b"Content-Length: 0", line=b"POST / HTTP/1.1")
    yield "chunked with trailer", CHUNKED + b"5\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n"
    yield (
        "expect 100-continue",
        request(b"Host: x", b"Expect: 100-continue", b"Content-Length: 2", line=b"PUT / HTTP/1.1")
        + b"ab",
    )
    yield (
        "expect 100-continue on HTTP/1.0",
        request(b"Expect: 100-continue", b"Content-Length: 2", line=b"PUT / HTTP/1.0") + b"ab",
    )
    yield (
        "websocket upgrade",
        request(b"Host: x", b"Connection: Upgrade", b"Upgrade: websocket", body=b"\x81\x00"),
    )
    yield "upgrade without Connection", request(b"Host: x", b"Upgrade: h2c", body=b"rest")
    yield "CONNECT", request(b"Host: a:443", line=b"CONNECT a:443 HTTP/1.1", body=b"\x16\x03")
    yield "duplicate ordinary headers", request(b"Host: x", b"Accept: a", b"Accept: b")


def framing() -> Iterator[tuple[str, bytes]]:
    te, cl = b"Transfer-Encoding: chunked", b"Content-Length: 5"
    body = b"5\r\nhello\r\n0\r\n\r\n"
    for order, lines in (("CL then TE", (cl, te)), ("TE then CL", (te, cl))):
        yield f"both {order}", request(b"Host: x", *lines, body=body, line=b"POST / HTTP/1.1")
    yield "both, CL 0", request(b"Host: x", te, b"Content-Length: 0", body=body)
    yield "both, TE gzip", request(b"Host: x", cl, b"Transfer-Encoding: gzip", body=b"hello")
    values = [
        b"5", b"005", b" 5 ", b"5, 5", b"5,5", b"5, 6", b"-5", b"+5", b"0x5", b"5.0", b"",
        b"1e3", b"5 5", b"\t5", b"05" * 10, b"9" * 20, b"9" * 21, b"18446744073709551615",
        b"18446744073709551616", b"0" * 21 + b"5", b"\xff",
    ]  # fmt: skip
    for value in values:
        yield f"CL {esc(value)!r}", request(b"Host: x", b"Content-Length: " + value, body=b"hello")
    for first, second in ((b"5", b"5"), (b"5", b"6"), (b"5", b"05"), (b"0", b"5")):
        yield (
            f"CL twice {first!r} {second!r}",
            request(
                b"Host: x", b"Content-Length: " + first, b"Content-Length: " + second, body=b"hello"
            ),
        )
    tes = [
        b"chunked", b"Chunked", b"CHUNKED", b" chunked", b"chunked ", b"chunked\t",
        b"chunked, identity", b"identity, chunked", b"gzip, chunked", b"chunked, gzip",
        b"xchunked", b"chunkedx", b"chunked;q=1", b"", b"identity", b"gzip", b"chunked,",
        b",chunked", b"chunked , chunked",
    ]  # fmt: skip
    for value in tes:
        yield f"TE {esc(value)!r}", CHUNKED.replace(b"chunked", value) + body
    yield "TE twice", request(b"Host: x", te, te, body=body)
    yield "TE on HTTP/1.0", request(te, body=body, line=b"POST / HTTP/1.0")


def line_endings() -> Iterator[tuple[str, bytes]]:
    yield "bare LF everywhere", GET.replace(b"\r\n", b"\n")
    yield "bare LF after request line", GET.replace(b"1.1\r\n", b"1.1\n")
    yield "bare LF after a header", GET.replace(b"x\r\n", b"x\n")
    yield "bare LF as the blank line", GET[:-2] + b"\n"
    yield "bare CR after request line", GET.replace(b"1.1\r\n", b"1.1\r")
    yield "bare CR inside a value", request(b"Host: x", b"X: a\rb")
    yield "bare CR ends a header", GET.replace(b"x\r\n", b"x\rX: y\r\n")
    yield "CR CR LF", GET.replace(b"x\r\n", b"x\r\r\n")
    yield "LF CR", GET.replace(b"\r\n\r\n", b"\n\r\r\n")
    yield "LF LF in body is data", POST[:-5] + b"a\n\nbc"
    for label, data in (("obs-fold SP", b" folded"), ("obs-fold HTAB", b"\tfolded")):
        yield label, request(b"Host: x", b"X-A: one", data)
        yield label + " in Host", request(b"Host: x", data)
        yield label + " in Content-Length", request(b"Host: x", b"Content-Length: 5", data)
        yield label + " first", request(data, b"Host: x")
    yield "obs-fold empty continuation", request(b"Host: x", b"X-A: one", b" ")


def names() -> Iterator[tuple[str, bytes]]:
    for label, line in (
        ("space before colon", b"Host : x"),
        ("HTAB before colon", b"Host\t: x"),
        ("space in name", b"Ho st: x"),
        ("no colon", b"Host x"),
        ("empty name", b": x"),
        ("leading space on first header", b" Host: x"),
        ("colon in value", b"Host: x:80"),
        ("name with token punctuation", b"X-!#$%&'*+.^_`|~: v"),
        ("name with separator", b"X(y): v"),
        ("name with slash", b"X/Y: v"),
        ("name with obs-text", b"X\xe9: v"),
        ("no space after colon", b"Host:x"),
    ):
        yield label, request(line, b"Host: y") if not line.startswith(b"Host") else request(line)


def controls() -> Iterator[tuple[str, bytes]]:
    for byte in CTLS:
        ctl = bytes([byte])
        yield f"CTL {byte:#04x} in value", request(b"Host: x", b"X: a" + ctl + b"b")
        yield f"CTL {byte:#04x} in name", request(b"Host: x", b"X" + ctl + b"Y: b")
        yield f"CTL {byte:#04x} in target", request(b"Host: x", line=b"GET /a" + ctl + b" HTTP/1.1")
        yield f"CTL {byte:#04x} in method", request(b"Host: x", line=b"GE" + ctl + b"T / HTTP/1.1")


def chunks() -> Iterator[tuple[str, bytes]]:
    for label, body in (
        ("one chunk", b"5\r\nhello\r\n0\r\n\r\n"),
        ("uppercase hex", b"A\r\n0123456789\r\n0\r\n\r\n"),
        ("leading zeros", b"0005\r\nhello\r\n0000\r\n\r\n"),
        ("20 hex digits", b"0" * 19 + b"5\r\nhello\r\n0\r\n\r\n"),
        ("21 hex digits", b"0" * 20 + b"5\r\nhello\r\n0\r\n\r\n"),
        ("negative size", b"-5\r\nhello\r\n0\r\n\r\n"),
        ("0x prefix", b"0x5\r\nhello\r\n0\r\n\r\n"),
        ("plus sign", b"+5\r\nhello\r\n0\r\n\r\n"),
        ("size overflow", b"f" * 17 + b"\r\nhello\r\n0\r\n\r\n"),
        ("huge size, short data", b"fffffff\r\nhello\r\n0\r\n\r\n"),
        ("space after size", b"5 \r\nhello\r\n0\r\n\r\n"),
        ("HTAB after size", b"5\t\r\nhello\r\n0\r\n\r\n"),
        ("space before size", b" 5\r\nhello\r\n0\r\n\r\n"),
        ("empty size", b"\r\nhello\r\n0\r\n\r\n"),
        ("extension", b"5;a=b\r\nhello\r\n0\r\n\r\n"),
        ("bare extension", b"5;a\r\nhello\r\n0;b\r\n\r\n"),
        ("quoted extension", b'5;a="b c"\r\nhello\r\n0\r\n\r\n'),
        ("space before extension", b"5 ;a=b\r\nhello\r\n0\r\n\r\n"),
        ("CTL in extension", b"5;a\x01b\r\nhello\r\n0\r\n\r\n"),
        ("NUL in extension", b"5;\x00\r\nhello\r\n0\r\n\r\n"),
        ("bare CR in extension", b"5;a\rb\r\nhello\r\n0\r\n\r\n"),
        ("bare LF in extension", b"5;a\nb\r\nhello\r\n0\r\n\r\n"),
        ("long extension", b"5;" + b"e" * 2000 + b"\r\nhello\r\n0\r\n\r\n"),
        ("bare LF after size", b"5\nhello\r\n0\r\n\r\n"),
        ("bare LF after data", b"5\r\nhello\n0\r\n\r\n"),
        ("junk after data", b"5\r\nhelloXX0\r\n\r\n"),
        ("data longer than size", b"3\r\nhello\r\n0\r\n\r\n"),
        ("missing final chunk", b"5\r\nhello\r\n"),
        ("missing final CRLF", b"5\r\nhello\r\n0\r\n"),
        ("bare LF ends trailers", b"5\r\nhello\r\n0\r\n\n"),
        ("trailer", b"5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n"),
        ("two trailers", b"5\r\nhello\r\n0\r\nX-T: 1\r\nX-U: 2\r\n\r\n"),
        ("trailer without colon", b"5\r\nhello\r\n0\r\nX-T 1\r\n\r\n"),
        ("trailer obs-fold", b"5\r\nhello\r\n0\r\nX-T: 1\r\n 2\r\n\r\n"),
        ("trailer bare LF", b"5\r\nhello\r\n0\r\nX-T: 1\n\r\n"),
        ("trailer Content-Length", b"5\r\nhello\r\n0\r\nContent-Length: 5\r\n\r\n"),
        ("trailer bad Content-Length", b"5\r\nhello\r\n0\r\nContent-Length: x\r\n\r\n"),
        ("trailer Transfer-Encoding", b"5\r\nhello\r\n0\r\nTransfer-Encoding: gzip\r\n\r\n"),
        ("many small chunks", b"1\r\na\r\n" * 30 + b"0\r\n\r\n"),
        ("chunk then pipelined GET", b"5\r\nhello\r\n0\r\n\r\n" + GET),
    ):
        yield label, CHUNKED + body


def targets() -> Iterator[tuple[str, bytes]]:
    forms = [
        b"/", b"//a", b"/a/../b", b"/%zz", b"/a?b=|c{}", b"/a#b", b"/?", b"*", b"a", b"a/b",
        b"a:80", b"http://a", b"http://a/", b"HTTP://A/B", b"http://a:b@c:1/x?y",
        b"http://[::1]:80/", b"http://a?b", b"http://a#b", b"http://", b"http:///a",
        b"http:/a", b"http:a", b"h2://a/", b"a+b://c/", b"ftp://a/b", b"http://a b/",
    ]  # fmt: skip
    for target in forms:
        for method in (b"GET", b"OPTIONS"):
            line = method + b" " + target + b" HTTP/1.1"
            yield f"{method.decode()} {esc(target)}", request(b"Host: x", line=line)
    for target in (b"a:443", b"a", b"/", b"[::1]:443", b"a:b", b"*", b"http://a:443"):
        line = b"CONNECT " + target + b" HTTP/1.1"
        yield f"CONNECT {esc(target)}", request(b"Host: x", line=line)


def request_lines() -> Iterator[tuple[str, bytes]]:
    for label, line in (
        ("HTTP/0.9 without version", b"GET /"),
        ("HTTP/0.9", b"GET / HTTP/0.9"),
        ("HTTP/2.0", b"GET / HTTP/2.0"),
        ("HTTP/1.2", b"GET / HTTP/1.2"),
        ("HTTP/3.0", b"GET / HTTP/3.0"),
        ("HTTP/11", b"GET / HTTP/11"),
        ("lowercase http", b"GET / http/1.1"),
        ("lowercase method", b"get / HTTP/1.1"),
        ("unknown method", b"FOO / HTTP/1.1"),
        ("RTSP method on HTTP", b"DESCRIBE / HTTP/1.1"),
        ("RTSP", b"DESCRIBE / RTSP/1.0"),
        ("ICE", b"SOURCE / ICE/1.0"),
        ("two spaces after method", b"GET  / HTTP/1.1"),
        ("two spaces after target", b"GET /  HTTP/1.1"),
        ("trailing space", b"GET / HTTP/1.1 "),
        ("HTAB separators", b"GET\t/\tHTTP/1.1"),
        ("no target", b"GET HTTP/1.1"),
        ("extra word", b"GET / HTTP/1.1 extra"),
        ("space in target", b"GET /a b HTTP/1.1"),
        ("obs-text in target", b"GET /caf\xe9 HTTP/1.1"),
        ("method only", b"GET"),
    ):
        yield label, request(b"Host: x", line=line)
    yield "HTTP/2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    yield "leading CRLF", b"\r\n" + GET
    yield "leading LF", b"\n" + GET
    yield "leading space", b" " + GET
    yield "empty head", b"\r\n\r\n"
    yield "TLS ClientHello", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 32
    yield "binary junk", bytes(range(256))


def pipelines() -> Iterator[tuple[str, bytes]]:
    yield "two GETs", GET + GET.replace(b"/ ", b"/2 ")
    yield "three GETs", GET * 3
    yield "POST then GET", POST + GET
    yield "chunked then GET", CHUNKED + b"3\r\nabc\r\n0\r\n\r\n" + GET
    yield "close then GET", request(b"Host: x", b"Connection: close") + GET
    yield "HTTP/1.0 then GET", b"GET / HTTP/1.0\r\n\r\n" + GET
    yield "GET then junk", GET + b"junk"
    yield "GET then bad GET", GET + GET.replace(b"Host: x", b"Host : x")
    yield "GET then blank line then GET", GET + b"\r\n" + GET
    yield "HEAD then GET", GET.replace(b"GET", b"HEAD") + GET
    yield (
        "upgrade then bytes",
        request(
            b"Host: x",
            b"Connection: upgrade",
            b"Upgrade: websocket",
            body=b"GET / HTTP/1.1\r\n\r\n",
        ),
    )
    yield (
        "POST upgrade with body",
        request(
            b"Host: x", b"Connection: upgrade", b"Upgrade: x", b"Content-Length: 2", body=b"abtail"
        ).replace(b"GET", b"POST", 1),
    )
    yield (
        "expect-continue then GET",
        request(b"Host: x", b"Expect: 100-continue", b"Content-Length: 1", body=b"z" + GET),
    )
    yield "GET with body bytes", GET + b"hello"
    yield "truncated second request", GET + GET[:10]


def truncations() -> Iterator[tuple[str, bytes]]:
    for cut in (5, 16, len(GET) - 2):
        yield f"GET cut at {cut}", GET[:cut]
    yield "POST body cut", POST[:-2]
    yield "chunk data cut", CHUNKED + b"5\r\nhel"
    yield "chunk line cut", CHUNKED + b"5"
    yield "trailers cut", CHUNKED + b"0\r\nX-T: 1\r\n"


def limits() -> Iterator[tuple[str, bytes, int]]:
    yield "head under the limit", request(b"Host: x", b"X: " + b"a" * 150), 256
    yield "head over the limit", request(b"Host: x", b"X: " + b"a" * 400), 256
    yield "head over the limit, incomplete", request(b"Host: x", b"X: " + b"a" * 400)[:-4], 256
    yield "request line over the limit", request(b"Host: x", line=b"GET /" + b"a" * 400), 256
    yield "many headers over the limit", request(*[b"X-%d: 1" % i for i in range(60)]), 256
    yield "chunk line over the limit", CHUNKED + b"5;" + b"e" * 600 + b"\r\nhello\r\n0\r\n\r\n", 512
    yield "trailers over the limit", CHUNKED + b"0\r\nX: " + b"t" * 600 + b"\r\n\r\n", 512
    yield "body over the head limit is fine", POST[:-5].replace(b": 5", b": 600") + b"b" * 600, 256
