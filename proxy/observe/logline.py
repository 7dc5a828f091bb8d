"""The HTTP access log line, built from a precompiled template instead of a dict.

``json.dumps`` of a 23-key dict walks the dict and dispatches on every value's type
per request; the keys and their order never change, so the line is one %-format with
each string escaped by the C escaper json itself uses (same bytes as ``json.dumps``).
Values that repeat from line to line (addresses, the protocol, the flag) are quoted
once and looked up after that, and milliseconds are formatted once instead of being
rounded and then printed (``round(x, 3)`` converts to decimal and back, ``repr``
converts again). ``Observer.log_entry`` keeps the dict shape for other writers and
for the tests.
"""

from __future__ import annotations

import json

from proxy.core.flags import Flag
from proxy.http.model import RequestRecord
from proxy.observe.accesslog import hostport
from proxy.observe.identity import UNKNOWN
from proxy.observe.tracecontext import SpanContext

# json's own C escaper: quotes, backslashes, control and non-ASCII characters as json.dumps.
quote = json.encoder.encode_basestring_ascii

_MAX_CACHED = 4096  # quoted addresses kept; peers' ports change, so it is cleared when full
_quoted_addresses: dict[tuple[str, int] | None, str] = {}
_FLAGS = {flag: quote(str(flag)) for flag in Flag}
_PROTOCOLS = {"1.1": quote("HTTP/1.1"), "1.0": quote("HTTP/1.0"), "": '"http"'}


def quoted_hostport(endpoint: tuple[str, int] | None) -> str:
    """``quote(hostport(endpoint))``, remembered: a connection's lines repeat its addresses."""
    text = _quoted_addresses.get(endpoint)
    if text is None:
        if len(_quoted_addresses) >= _MAX_CACHED:
            _quoted_addresses.clear()
        text = _quoted_addresses[endpoint] = quote(hostport(endpoint))
    return text


def milliseconds(seconds: float) -> str:
    """``repr(round(seconds * 1000.0, 3))``, with one decimal conversion instead of three.

    Both round the exact binary value to three decimals; ``repr`` then prints the
    shortest text that reads back as that double, which for these magnitudes is the
    same three decimals with trailing zeros dropped (one zero kept after the point).
    From 1e16 on ``repr`` switches to exponent notation: past about 300 years, it decides.
    """
    ms = seconds * 1000.0
    if not -1e15 < ms < 1e15:
        return repr(round(ms, 3))
    text = f"{ms:.3f}".rstrip("0")
    return text + "0" if text[-1] == "." else text


_TEMPLATE = (
    '{"time":"%s","direction":"%s","protocol":%s,"method":%s,"authority":%s,"path":%s,'
    '"status":%d,"response_flags":%s,"service":%s,"version":%s,"upstream":%s,'
    '"attempts":%d,"duration_ms":%s,"upstream_ms":%s,"bytes_received":%d,'
    '"bytes_sent":%d,"request_id":%s,"trace_id":%s,"span_id":%s,"downstream_peer":%s,'
    '"original_dst":%s,"upgraded":%s,"worker":%d}\n'
)


def http_line(
    stamp: str, record: RequestRecord, service: str, span: SpanContext | None, pid: int
) -> bytes:
    """One request's line, key for key and byte for byte what ``json.dumps`` makes of
    ``{"time": stamp, **Observer.log_entry(...)}`` (with compact separators)."""
    upstream_ms = record.upstream_latency
    conn = record.conn
    version = record.http_version
    return (
        _TEMPLATE
        % (
            stamp,  # digits, dashes, colons: nothing to escape
            conn.direction.value,  # "inbound" / "outbound"
            _PROTOCOLS.get(version) or quote(f"HTTP/{version}"),
            quote(record.method),
            quote(record.authority),
            quote(record.path),
            record.status,
            _FLAGS[record.flag],
            quote(service),
            quote(record.version or UNKNOWN),
            quoted_hostport(record.endpoint),
            record.attempts,
            milliseconds(record.duration),
            "null" if upstream_ms is None else milliseconds(upstream_ms),
            record.bytes_received,
            record.bytes_sent,
            quote(record.request_id),
            quote(span.trace_id) if span else "null",
            quote(span.span_id) if span else "null",
            quoted_hostport(conn.peer),
            quoted_hostport(conn.original_dst),
            "true" if record.upgraded else "false",
            pid,
        )
    ).encode()
