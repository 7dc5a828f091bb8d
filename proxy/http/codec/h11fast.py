"""h11 events for heads h11 has already parsed, built without validating them again.

h11's public constructors check every header name and value against the HTTP
grammar (two regex matches per header), re-lowercase the names, and match the
method and target against regexes too. The proxy forwards heads that h11 parsed, and
so validated, moments earlier, plus headers it generates itself from fixed names and
digits. That check then runs twice per hop, and in the profile it is about a tenth
of the engine's CPU per request.

These builders fill in the event's fields directly. The bytes h11 writes for them
are the same: its writer reads only the fields. They rely on two h11 internals:
``h11._headers.Headers(full_items)``, whose items are ``(raw name, lowercase name,
value)``, and the events' slots. ``items`` reads a parsed message's ``full_items``
the same way, so a relayed response's names are not lowercased a second time.
``FAST`` says whether this h11 still has that shape. It is checked once at import
against the public constructors; if the check fails, every builder falls back to
the public constructor.

Only values that came out of h11's parser, or that the proxy made itself, may come
through here. Anything else, such as a header from configuration, goes through the
public constructors, so a CR or LF can never reach the wire unchecked.
"""

from __future__ import annotations

import h11

from proxy.http.codec.base import HeaderItems, RawHeaders

try:
    from h11._headers import Headers as _Headers
except ImportError:  # pragma: no cover - a future h11 without the module
    _Headers = None  # type: ignore[assignment,misc]

_new = object.__new__
_set = object.__setattr__


def _items(headers: RawHeaders) -> HeaderItems:
    return [(name, name.lower(), value) for name, value in headers]


def _pairs(items: HeaderItems) -> RawHeaders:
    return [(name, value) for name, _, value in items]


def _fast_request(method: bytes, target: bytes, headers: RawHeaders) -> h11.Request:
    event = _new(h11.Request)
    _set(event, "method", method)
    _set(event, "target", target)
    _set(event, "http_version", b"1.1")
    _set(event, "headers", _Headers([(name, name.lower(), value) for name, value in headers]))
    return event


def _fast_final(status: int, reason: bytes, items: HeaderItems) -> h11.Response:
    event = _new(h11.Response)
    _set(event, "status_code", status)
    _set(event, "reason", reason)
    _set(event, "http_version", b"1.1")
    _set(event, "headers", _Headers(items))
    return event


def _fast_informational(
    status: int, reason: bytes, items: HeaderItems
) -> h11.InformationalResponse:
    event = _new(h11.InformationalResponse)
    _set(event, "status_code", status)
    _set(event, "reason", reason)
    _set(event, "http_version", b"1.1")
    _set(event, "headers", _Headers(items))
    return event


def _fast_data(data: bytes | bytearray) -> h11.Data:
    event = _new(h11.Data)
    _set(event, "data", data)
    _set(event, "chunk_start", False)
    _set(event, "chunk_end", False)
    return event


def _check() -> bool:
    """The fast builders produce exactly what the public constructors do."""
    if _Headers is None:
        return False
    headers = [(b"Host", b"example"), (b"X-Mixed-Case", b"v"), (b"Content-Length", b"3")]
    try:
        request = _fast_request(b"POST", b"/a?b", headers)
        want = h11.Request(method=b"POST", target=b"/a?b", headers=headers)
        response = _fast_final(200, b"OK", _items(headers[1:]))
        early = _fast_informational(103, b"Early", _items(headers[1:2]))
        want_early = h11.InformationalResponse(
            status_code=103, reason=b"Early", headers=headers[1:2]
        )
        want_response = h11.Response(status_code=200, reason=b"OK", headers=headers[1:])
        same = (
            request == want
            and response == want_response
            and early == want_early
            and request.headers.raw_items() == want.headers.raw_items()
            and response.headers.raw_items() == want_response.headers.raw_items()
            and want.headers._full_items == _items(headers)  # what ``items`` hands out
        )
        client = h11.Connection(h11.CLIENT)
        same = same and client.send(request) == h11.Connection(h11.CLIENT).send(want)
        same = same and _fast_data(b"abc") == h11.Data(data=b"abc")
    except Exception:
        return False
    return bool(same)


FAST = _check()


def _request(method: bytes, target: bytes, headers: RawHeaders) -> h11.Request:
    return h11.Request(method=method, target=target, headers=headers)


def _data(chunk: bytes | bytearray) -> h11.Data:
    return h11.Data(data=bytes(chunk))


def _final(status: int, reason: bytes, items: HeaderItems) -> h11.Response:
    return h11.Response(status_code=status, reason=reason, headers=_pairs(items))


def _informational(status: int, reason: bytes, items: HeaderItems) -> h11.InformationalResponse:
    return h11.InformationalResponse(status_code=status, reason=reason, headers=_pairs(items))


def items(headers: _Headers) -> HeaderItems:
    """A parsed message's headers as ``(name, lowercase name, value)``: h11's own list
    (read it, never change it), so nothing is lowercased or copied again. (The h11
    codec reads ``_full_items`` inline when ``FAST``; this is for everything else.)"""
    if FAST:
        return headers._full_items
    return _items(headers.raw_items())


# The builders, bound once: the fast ones when this h11 has the expected shape, else
# the public constructors. No per-call branch and no wrapper frame on the hot path.
# ``request``: an HTTP/1.1 request, ``method``/``target`` as h11 parsed them, one Host.
request = _fast_request if FAST else _request
# ``data``: a body chunk to send (a body is never checked against a grammar).
data = _fast_data if FAST else _data
# ``response`` / ``informational``: a final / 1xx response relayed from an upstream.
response = _fast_final if FAST else _final
informational = _fast_informational if FAST else _informational
