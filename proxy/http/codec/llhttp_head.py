"""One head through llhttp, with the few checks llhttp does not make; the only httptools user.

A whole head goes to a fresh httptools parser in one call (a parser costs 0.2 µs);
its ``on_header`` callback collects the items, lowercasing each name once and noting
the headers that decide framing, keep-alive, 100-continue and upgrades. What llhttp
accepts but
the shared grammar does not (HTTP/0.9 and 2.0, extra spaces in the start line, ``*``
for GET, a missing Host, TE other than chunked, ...) is flagged cheaply here, and a
flagged or refused head is judged by ``h1grammar`` instead: it picks the status, so
both codecs refuse with the same one, and it accepts what only llhttp's quirks refuse.
"""

from __future__ import annotations

import re
from typing import Final, TypeVar

import httptools

from proxy.http.codec import h1grammar
from proxy.http.codec.base import HeaderItems, Request, Response, lowered

_VERSIONS: Final = {b"1.1": b"1.1", b"1.0": b"1.0"}  # the same bytes, without a copy
_SPECIAL: Final = frozenset(
    (b"host", b"content-length", b"transfer-encoding", b"connection", b"expect", b"upgrade")
)
_REASON_BAD: Final = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_OWS: Final = b" \t"
# httptools' names as C statics: a module attribute is a generic lookup per use.
_RequestParser: Final = httptools.HttpRequestParser
_ResponseParser: Final = httptools.HttpResponseParser
_Upgrade: Final = httptools.HttpParserUpgrade
_Refused: Final = httptools.HttpParserError
_Head = TypeVar("_Head", Request, Response)


class HeadParser:
    """Parses heads of one role; after each, its attributes describe the last one.

    httptools calls only the callbacks its protocol object has. The URL, reason and
    end-of-headers callbacks are C methods of fresh lists (``list.append``,
    ``list.clear``); ``on_header`` is this class's own: compiled (``proxy.compiled``),
    a call from llhttp costs less than splitting the line again with bytes methods,
    each of which is a generic method call from compiled code.
    """

    __slots__ = (
        "_items",
        "chunked",
        "close",
        "expect",
        "flagged",
        "hosts",
        "length",
        "on_body",
        "on_chunk_complete",
        "on_chunk_header",
        "on_headers_complete",
        "on_message_begin",
        "on_message_complete",
        "on_status",
        "on_url",
        "upgrade",
    )

    def __init__(self) -> None:
        self._items: HeaderItems = []
        # Callbacks httptools looks up and this parser does not want: None is "no
        # callback" to it, as a missing attribute is, but costs no AttributeError (ten
        # per request, each raised and cleared in C).
        self.on_body: None = None
        self.on_chunk_complete: None = None
        self.on_chunk_header: None = None
        self.on_message_begin: None = None
        self.on_message_complete: None = None
        self._reset()

    def _reset(self) -> None:
        self.flagged = False
        self.hosts = 0
        self.length = -1  # no Content-Length
        self.chunked = False
        self.close = False
        self.expect = False
        self.upgrade = False

    def on_header(self, name: bytes, value: bytes) -> None:
        """httptools' callback, once per header line of the head being fed (llhttp
        dropped the value's leading OWS, not its trailing OWS, which h11 drops)."""
        lower = lowered(name)
        if value and value[-1] in (32, 9):  # SP, HTAB
            value = value.rstrip(_OWS)
        if lower in _SPECIAL:
            if lower == b"host":
                self.hosts += 1
            elif lower == b"content-length" and self.length < 0 and len(value) < 20:
                self.length = int(value)  # the usual one: llhttp checked the digits
            elif value != b"keep-alive" or lower != b"connection":
                value = self._special(lower, value)  # (keep-alive: nothing to note)
        self._items.append((name, lower, value))

    def _special(self, lower: bytes, value: bytes) -> bytes:
        if lower == b"host":
            self.hosts += 1
        elif lower == b"content-length":
            self.length = int(value)  # llhttp or the grammar checked the digits
            if len(value) > 19:  # the grammar decides near uint64's end
                self.flagged = True
        elif lower == b"transfer-encoding":
            value = value.lower()
            if value != b"chunked" or self.chunked:
                self.flagged = True
            self.chunked = True
        else:
            tokens = [v.strip() for v in value.lower().split(b",")]
            if lower == b"connection":
                self.close = self.close or b"close" in tokens
            elif lower == b"expect":
                self.expect = self.expect or b"100-continue" in tokens
            else:
                self.upgrade = self.upgrade or any(tokens)
        return value

    # -- heads ---------------------------------------------------------------------

    def request(self, head: bytes) -> Request:
        urls: list[bytes] = []
        pending = [True]  # emptied when llhttp reaches the end of the headers
        self.on_url = urls.append
        self.on_headers_complete = pending.clear
        self._reset()
        items: HeaderItems = []
        self._items = items
        parser = _RequestParser(self)
        try:
            parser.feed_data(head)
        except _Upgrade:
            pass  # CONNECT or Upgrade: the head is complete all the same
        except _Refused:
            return self._judged(h1grammar.parse_request(head))  # see ``_judged``
        method: bytes = parser.get_method()
        url = b"".join(urls)
        eol = head.find(b"\r\n")
        # The version llhttp read, from its own bytes (its getter formats a str): the
        # checks below make the line end in exactly "HTTP/x.y".
        version = _VERSIONS.get(head[eol - 3 : eol])
        if (
            pending
            or version is None
            or eol != len(method) + len(url) + 10
            or not head.startswith(b"HTTP/", eol - 8)
            or url[:1] != b"/"
            or method == b"CONNECT"
        ):
            return self._judged(h1grammar.parse_request(head))
        if (
            self.flagged
            or (self.hosts != 1 and (self.hosts > 1 or version == b"1.1"))
            or (self.chunked and (self.length >= 0 or version == b"1.0"))
        ):
            return self._judged(h1grammar.parse_request(head))
        return Request(method, url, version, items)

    def response(self, head: bytes) -> Response:
        reasons: list[bytes] = []
        pending = [True]  # emptied when llhttp reaches the end of the headers
        self.on_status = reasons.append
        self.on_headers_complete = pending.clear
        self._reset()
        items: HeaderItems = []
        self._items = items
        parser = _ResponseParser(self)
        try:
            parser.feed_data(head)
        except _Upgrade:
            pass  # a 101: the head is complete
        except _Refused:
            return self._judged(h1grammar.parse_response(head))
        status: int = parser.get_status_code()
        reason = b"".join(reasons) if reasons else None
        eol = head.find(b"\r\n")
        version = _VERSIONS.get(head[5:8])  # "HTTP/x.y SP": checked below, as above
        if (
            pending
            or version is None
            or status < 100
            or eol != (12 if reason is None else 13 + len(reason))
            or not head.startswith(b"HTTP/")
            # isalpha: the usual "OK" needs no regex
            or (reason and not reason.isalpha() and _REASON_BAD.search(reason) is not None)
        ):
            return self._judged(h1grammar.parse_response(head))
        if self.flagged or (self.chunked and (self.length >= 0 or version == b"1.0")):
            return self._judged(h1grammar.parse_response(head))
        return Response(status, reason or b"", version, items)

    def _judged(self, head: _Head) -> _Head:
        """Take the grammar's parse, and recompute what the codec reads off the items.

        The grammar is the arbiter both ways: it picks the status of a head llhttp
        refused, and accepts one only llhttp's quirks refuse (a request whose
        ``Transfer-Encoding: chunked`` ends in an HTAB: OWS is allowed there)."""
        self._reset()
        for _, lower, value in head.items:
            if lower in _SPECIAL:
                self._special(lower, value)
        return head
