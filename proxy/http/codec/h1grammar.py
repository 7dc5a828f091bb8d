"""The HTTP/1 head grammar both HTTP/1 codecs agree on, as one Python reference parser.

A complete head (start line, header lines, blank line) is judged in three passes in
a fixed order, so the first fault and its status are the same whichever codec meets
it: ``raw_error`` (bare CR or LF, obs-fold, control characters, a repeated or listed
``Content-Length``), then h11's own rules line by line (syntax 400, an unsupported
``Transfer-Encoding`` 501), then ``semantic_error`` (what h11 lets through but llhttp
or RFC 9112 refuse). The h11 codec runs the first pass before h11 and the last after
it; the llhttp codec calls ``parse_head`` only when llhttp or its cheap checks object.
No library is imported here.
"""

from __future__ import annotations

import re
from typing import Final

from proxy.http.codec.base import HeaderItems, ProtocolError, Request, Response

# The methods llhttp parses in an HTTP/1.x request line (PRI is the HTTP/2 preface,
# the RTSP ones need RTSP/). A method outside this set is refused by both codecs:
# llhttp cannot parse it, so h11 may not accept it either (400).
METHODS: Final = frozenset(
    b"DELETE GET HEAD POST PUT CONNECT OPTIONS TRACE COPY LOCK MKCOL MOVE PROPFIND "
    b"PROPPATCH SEARCH UNLOCK BIND REBIND UNBIND ACL REPORT MKACTIVITY CHECKOUT MERGE "
    b"M-SEARCH NOTIFY SUBSCRIBE UNSUBSCRIBE PATCH PURGE MKCALENDAR LINK UNLINK SOURCE "
    b"QUERY".split()
)
VERSIONS: Final = (b"1.1", b"1.0")
U64_MAX: Final = 2**64 - 1  # llhttp keeps lengths in a uint64

# Pass 1, on the raw bytes: CTLs other than HTAB/CR/LF, a CR not before LF, an LF not
# after CR, a line starting with whitespace (obs-fold). RFC 9112 allows a bare LF, but
# DESIGN.md refuses it: two parsers that split lines differently is how smuggling starts.
_RAW_BAD: Final = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\r(?!\n)|(?<!\r)\n|\n[ \t]")
_CONTENT_LENGTH_LINE: Final = re.compile(rb"\ncontent-length:([^\n]*)", re.IGNORECASE)

# Pass 2: h11's grammar (h11/_abnf.py), written out again.
_TOKEN: Final = rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+"
_FIELD_VCHAR: Final = rb"[^\x00\s]"
_FIELD_CONTENT: Final = rb"%s+(?:[ \t]+%s+)*" % (_FIELD_VCHAR, _FIELD_VCHAR)
_HEADER_FIELD: Final = re.compile(rb"(%s):[ \t]*((?:%s)?)[ \t]*" % (_TOKEN, _FIELD_CONTENT))
_REQUEST_LINE: Final = re.compile(rb"(%s) ([\x21-\x7e]+) HTTP/([0-9]\.[0-9])" % _TOKEN)
_STATUS_LINE: Final = re.compile(rb"HTTP/([0-9]\.[0-9]) ([0-9]{3})(?: ((?:[ \t]|[^\x00\s])*))?")
_DIGITS: Final = re.compile(rb"[0-9]+")
_FOLD: Final = re.compile(rb"[ \t]+")

# Pass 3: request-target forms (RFC 9112 §3.2) as far as llhttp parses them.
_ABSOLUTE: Final = re.compile(
    rb"[A-Za-z]+://[!$%&'()*+,\-.0-9:;=@A-Z\[\]_a-z~]+(?:[/?][\x21-\x7e]*)?"
)
_AUTHORITY: Final = re.compile(rb"[!$%&'()*+,\-.0-9;=A-Z\[\]_a-z~]+:[0-9]+")


def head_end(data: bytes | bytearray, start: int = 0, scan: int = 0) -> int:
    """Where the head starting at ``start`` ends (past its blank line), or -1.

    h11's rule (a blank line is LF, optional CR, LF), so both codecs cut the same
    head out of the same bytes; a head that starts with a blank line ends there.
    ``scan``: where to resume looking (a caller that saw no end yet keeps
    ``len(data) - 2``, so a head trickling in byte by byte is not rescanned).
    """
    if data[start : start + 1] == b"\n":
        return start + 1
    if data[start : start + 2] == b"\r\n":
        return start + 2
    # The first "\n\r?\n" by two finds (memchr-fast; a regex search costs more):
    # the first "\n\r\n", unless a "\n\n" starts before it.
    begin = max(start, scan)
    crlf = data.find(b"\n\r\n", begin)
    if crlf < 0:
        lf = data.find(b"\n\n", begin)
        return lf + 2 if lf >= 0 else -1
    lf = data.find(b"\n\n", begin, crlf + 1)
    return lf + 2 if lf >= 0 else crlf + 3


def raw_error(head: bytes | bytearray) -> ProtocolError | None:
    """Pass 1: faults only the raw bytes show (h11 folds, splits and merges them away).

    Byte counts and finds, in C: this runs on every head h11 parses, and one regex
    with lookarounds tried at each position cost more than h11's own parse of it.
    """
    # The head's CRs, LFs and other control bytes, in order: exactly "\r\n" repeated
    # when there is no bare CR or LF and no forbidden control byte.
    shape = head.translate(None, _NOT_CR_LF_CTL)
    if shape.count(b"\r\n") * 2 != len(shape) or head.find(b"\n ") >= 0 or head.find(b"\n\t") >= 0:
        bad = _RAW_BAD.search(head)  # the rare refusal: name the bytes
        assert bad is not None
        return ProtocolError(f"forbidden byte sequence {bad.group()!r} in the head")
    return content_length_error(head)


def content_length_error(head: bytes | bytearray) -> ProtocolError | None:
    """A repeated or comma-listed Content-Length (h11 would merge it away)."""
    lower = head.lower()
    first = lower.find(b"\ncontent-length:")
    if first >= 0:
        if lower.find(b"\ncontent-length:", first + 16) >= 0:
            return ProtocolError("more than one Content-Length")
        if head.find(b",", first, head.find(b"\n", first + 16)) >= 0:
            return ProtocolError("more than one Content-Length")
    return None


_CTLS: Final = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])
_NOT_CR_LF_CTL: Final = bytes(b for b in range(256) if b not in _CTLS and b not in b"\r\n")


def split_lines(head: bytes | bytearray) -> list[bytes]:
    """The head's lines without terminators and without the blank line (h11's split)."""
    lines = bytes(head).split(b"\n")
    return [line[:-1] if line.endswith(b"\r") else line for line in lines[:-2]]


def parse_fields(lines: list[bytes]) -> HeaderItems:
    """Header lines (or trailer lines) to items, h11's rules: obs-fold joined with a
    space, ``name: OWS value OWS``, Content-Length normalized, one chunked TE (501)."""
    items: HeaderItems = []
    folded: list[bytes] = []
    for line in lines:
        fold = _FOLD.match(line)
        if fold is None:
            folded.append(line)
        elif not folded:
            raise ProtocolError("continuation line at start of headers")
        else:
            folded[-1] = folded[-1] + b" " + line[fold.end() :]
    fields = []
    for line in folded:  # every line's syntax first, then the values (h11's order)
        field = _HEADER_FIELD.fullmatch(line)
        if field is None:
            raise ProtocolError(f"illegal header line: {line!r}")
        fields.append((field.group(1), field.group(2)))
    seen_length: bytes | None = None
    seen_te = False
    for name, value in fields:
        lower = name.lower()
        if lower == b"content-length":
            lengths = {length.strip() for length in value.split(b",")}
            if len(lengths) != 1:
                raise ProtocolError("conflicting Content-Length headers")
            value = lengths.pop()
            if _DIGITS.fullmatch(value) is None or len(value) > 20:
                raise ProtocolError("bad Content-Length")
            if seen_length is None:
                seen_length = value
            elif seen_length != value:
                raise ProtocolError("conflicting Content-Length headers")
            else:
                continue
        elif lower == b"transfer-encoding":
            if seen_te:
                raise ProtocolError("multiple Transfer-Encoding headers", 501)
            value = value.lower()
            if value != b"chunked":
                raise ProtocolError("only Transfer-Encoding: chunked is supported", 501)
            seen_te = True
        items.append((name, lower, value))
    return items


def parse_request(head: bytes | bytearray) -> Request:
    """A request head, or the ``ProtocolError`` both codecs raise for it."""
    fault = raw_error(head)
    if fault is not None:
        raise fault
    lines = split_lines(head)
    if not lines:
        raise ProtocolError("no request line received")
    line = _REQUEST_LINE.fullmatch(lines[0])
    if line is None:
        raise ProtocolError(f"illegal request line: {lines[0]!r}")
    method, target, version = line.groups()
    items = parse_fields(lines[1:])
    hosts = sum(1 for _, lower, _ in items if lower == b"host")
    if hosts > 1 or (hosts == 0 and version == b"1.1"):
        raise ProtocolError("a request needs exactly one Host header")
    fault = request_error(method, target, version, items)
    if fault is not None:
        raise fault
    return Request(method, target, version, items)


def parse_response(head: bytes | bytearray) -> Response:
    """A response head (1xx included), or the ``ProtocolError`` for it."""
    fault = raw_error(head)
    if fault is not None:
        raise fault
    lines = split_lines(head)
    if not lines:
        raise ProtocolError("no response line received")
    line = _STATUS_LINE.fullmatch(lines[0])
    if line is None:
        raise ProtocolError(f"illegal status line: {lines[0]!r}")
    version, status, reason = line.group(1), int(line.group(2)), line.group(3) or b""
    items = parse_fields(lines[1:])
    fault = response_error(status, version, items)
    if fault is not None:
        raise fault
    return Response(status, reason, version, items)


def request_error(
    method: bytes, target: bytes, version: bytes, items: HeaderItems
) -> ProtocolError | None:
    """Pass 3 for a request h11 accepted: what llhttp or RFC 9112 refuse."""
    if method not in METHODS:
        return ProtocolError(f"unknown method {method!r}")
    if version not in VERSIONS:
        return ProtocolError(f"HTTP/{version.decode('ascii')} is not HTTP/1.0 or 1.1")
    if not target_ok(method, target):
        return ProtocolError(f"request target {target!r} does not fit the method")
    return framing_error(version, items)


def response_error(status: int, version: bytes, items: HeaderItems) -> ProtocolError | None:
    """Pass 3 for a response: h11's status range, then the version and framing."""
    if status < 100:
        return ProtocolError(f"status {status} is below 100")
    if version not in VERSIONS:
        return ProtocolError(f"HTTP/{version.decode('ascii')} is not HTTP/1.0 or 1.1")
    return framing_error(version, items)


def target_ok(method: bytes, target: bytes) -> bool:
    """origin-form; absolute-form; authority-form only for CONNECT (which needs it);
    ``*`` only for OPTIONS (RFC 9112 §3.2)."""
    if method == b"CONNECT":
        return _AUTHORITY.fullmatch(target) is not None
    if target[:1] == b"/":
        return True
    if target == b"*":
        return method == b"OPTIONS"
    return _ABSOLUTE.fullmatch(target) is not None


def framing_error(version: bytes, items: HeaderItems) -> ProtocolError | None:
    """Framing h11 resolves silently: both CL and TE (RFC 9112 §6.3 says a proxy must
    not forward it), TE from an HTTP/1.0 peer (§6.1: faulty framing), CL past 2**64."""
    length = chunked = None
    for _, lower, value in items:
        if lower == b"content-length":
            length = value
        elif lower == b"transfer-encoding":
            chunked = value
    if length is not None and chunked is not None:
        return ProtocolError("both Content-Length and Transfer-Encoding")
    if chunked is not None and version == b"1.0":
        return ProtocolError("Transfer-Encoding from an HTTP/1.0 peer")
    if length is not None and int(length) > U64_MAX:
        return ProtocolError("Content-Length too large")
    return None
