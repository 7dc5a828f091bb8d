"""Both HTTP/1 codecs write the same bytes for the same calls, and refuse the same calls.

Framing is the codec's job on the way out (rule 2): a response of unknown length is
chunked for an HTTP/1.1 client and delimited by close for an HTTP/1.0 one, a HEAD
response keeps its headers but sends no body, ``Connection: close`` is added when the
connection will not be kept alive. The llhttp codec writes its own heads and chunks;
h11 is the reference for every byte.
"""

from __future__ import annotations

from collections.abc import Callable

import httptools
import pytest

from proxy.http.codec import CODECS, END, Codec, End, ProtocolError, Role, codec_named
from proxy.http.codec.h1grammar import METHODS
from proxy.http.codec.llhttp import LlhttpCodec

Script = Callable[[Codec, list[bytes]], None]
GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
CL = (b"Content-Length", b"content-length", b"3")
TYPE = (b"Content-Type", b"content-type", b"text/plain")


def served(request: bytes, script: Script) -> list[bytes | int]:
    """What each codec writes (or the status it raises) serving ``request`` so."""
    results: list[bytes | int] = []
    for name in ("h11", "llhttp"):
        codec = CODECS[name](Role.SERVER)
        codec.feed(request)
        while type(codec.next_event()) is not End:
            pass
        out: list[bytes] = []
        try:
            script(codec, out)
        except ProtocolError as exc:
            results.append(exc.status)
        else:
            results.append(b"".join(out))
    return results


def unknown_length(codec: Codec, out: list[bytes]) -> None:
    codec.send_response(200, b"OK", [TYPE], out)
    codec.send_data(b"abc", out)
    codec.send_data(b"", out)
    codec.send_data(bytearray(b"defgh"), out)
    codec.send_end(END, out)


def with_trailers(codec: Codec, out: list[bytes]) -> None:
    codec.send_response(200, b"OK", [TYPE], out)
    codec.send_data(b"abc", out)
    codec.send_end(End([(b"X-Sum", b"1"), (b"Host", b"h")]), out)


def known_length(codec: Codec, out: list[bytes]) -> None:
    codec.send_response(200, b"OK", [CL, TYPE], out)
    codec.send_data(b"abc", out)
    codec.send_end(END, out)


def too_much(codec: Codec, out: list[bytes]) -> None:
    codec.send_response(200, b"OK", [CL], out)
    codec.send_data(b"abcd", out)


def too_little(codec: Codec, out: list[bytes]) -> None:
    codec.send_response(200, b"OK", [CL], out)
    codec.send_data(b"ab", out)
    codec.send_end(END, out)


def early_hints_then_final(codec: Codec, out: list[bytes]) -> None:
    codec.send_response(103, b"Early Hints", [(b"Link", b"link", b"</a>")], out)
    known_length(codec, out)


def local_reply(codec: Codec, out: list[bytes]) -> None:
    codec.send_local(503, b"Service Unavailable", [(b"Content-Length", b"2")], out)
    codec.send_data(b"no", out)
    codec.send_end(END, out)


def keep_alive_after(codec: Codec, out: list[bytes]) -> None:
    known_length(codec, out)
    out.append(b"next:%d" % codec.next_message())


CASES = {
    "unknown length, HTTP/1.1 client: chunked": (GET, unknown_length),
    "unknown length, HTTP/1.0 client: close": (b"GET / HTTP/1.0\r\n\r\n", unknown_length),
    "trailers, chunked": (GET, with_trailers),
    "trailers to HTTP/1.0: refused": (b"GET / HTTP/1.0\r\n\r\n", with_trailers),
    "HEAD, unknown length": (b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", unknown_length),
    "HEAD, known length": (b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", known_length),
    "client asked to close": (
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        known_length,
    ),
    "keep-alive": (GET, keep_alive_after),
    "HTTP/1.0 is not kept alive": (b"GET / HTTP/1.0\r\n\r\n", keep_alive_after),
    "too much body": (GET, too_much),
    "too little body": (GET, too_little),
    "1xx then final": (GET, early_hints_then_final),
    "a local reply": (GET, local_reply),
}


@pytest.mark.parametrize("request_bytes,script", CASES.values(), ids=list(CASES))
def test_both_codecs_write_the_same_bytes(request_bytes: bytes, script: Script) -> None:
    h11_out, llhttp_out = served(request_bytes, script)
    assert llhttp_out == h11_out


def test_chunked_framing_is_what_an_http_1_1_client_gets() -> None:
    (_, out) = served(GET, unknown_length)
    assert isinstance(out, bytes)
    assert out.endswith(b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n5\r\ndefgh\r\n0\r\n\r\n")


def test_a_local_reply_with_a_bad_header_is_refused_before_the_wire() -> None:
    def bad(codec: Codec, out: list[bytes]) -> None:
        codec.send_local(500, b"Oops", [(b"X-Bad", b"a\r\nInjected: yes")], out)

    codec = LlhttpCodec(Role.SERVER)
    codec.feed(GET)
    codec.next_event()
    with pytest.raises(ProtocolError) as caught:
        bad(codec, [])
    assert caught.value.status == 500


def test_requests_are_written_alike_with_host_first() -> None:
    outs = []
    for name in ("h11", "llhttp"):
        out: list[bytes] = []
        codec = CODECS[name](Role.CLIENT)
        headers = [(b"X-A", b"1"), (b"Host", b"x"), (b"Transfer-Encoding", b"chunked")]
        codec.send_request(b"POST", b"/p?q", headers, out)
        codec.send_data(b"hello", out)
        codec.send_end(End([(b"X-T", b"2")]), out)
        outs.append(b"".join(out))
    assert outs[1] == outs[0]
    assert outs[1].startswith(b"POST /p?q HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n")


def test_auto_is_llhttp_when_httptools_imports() -> None:
    assert codec_named("auto") is LlhttpCodec is CODECS["llhttp"]


def test_the_grammar_knows_exactly_the_methods_llhttp_parses() -> None:
    candidates = METHODS | {b"PRI", b"DESCRIBE", b"SETUP", b"FOO", b"get", b"FLUSH"}
    parsed = set()
    for method in candidates:
        parser = httptools.HttpRequestParser(object())
        try:
            parser.feed_data(method + b" / HTTP/1.1\r\nHost: x\r\n\r\n")
        except httptools.HttpParserUpgrade:
            parsed.add(method)  # CONNECT: parsed, then an upgrade
        except httptools.HttpParserError:
            continue
        else:
            parsed.add(method)
    assert parsed == METHODS
