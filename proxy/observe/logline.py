"""Every access-log line: one JSON object per HTTP request or TCP connection.

Both kinds name the same facts alike (``direction``, ``protocol``, ``upstream``,
``upstream_cluster``, ``response_flags``, ``duration_ms``, ``bytes_received``,
``bytes_sent``, ``downstream_peer``, ``original_dst``, ``worker``, and ``time``
first). ``http_entry`` and ``tcp_entry`` build the dict, ``entry_line`` encodes one.
The HTTP line skips the dict: ``json.dumps`` of 23 keys walks the dict and dispatches
on every value's type per request, while the keys and their order never change, so
``http_line`` is one %-format with each string escaped by the C escaper json itself
uses (same bytes as ``json.dumps`` of ``http_entry``). Values that repeat from line to
line (addresses, the protocol, the flag) are quoted once and looked up after that, and
milliseconds are formatted once instead of being rounded and then printed
(``round(x, 3)`` converts to decimal and back, ``repr`` converts again). The real log
renders it with ``httplines.HttpLines``, which keeps whole runs of repeating text;
``http_line`` is the reference it is tested against.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final

from proxy.core.flags import Flag
from proxy.http.model import RequestRecord
from proxy.l4.conn import Direction, Intercepted
from proxy.observe.identity import UNKNOWN
from proxy.observe.tracecontext import SpanContext

# json's own C escaper: quotes, backslashes, control and non-ASCII characters as json.dumps.
# Typed, so that compiled f-strings join its result directly (an untyped piece goes
# through str.format, about 1,200 instructions each).
quote: Final[Callable[[str], str]] = json.encoder.encode_basestring_ascii
# json.dumps with non-default separators builds a new encoder per call: keep one.
_ENCODE: Final = json.JSONEncoder(separators=(",", ":")).encode

_MAX_CACHED: Final = 4096  # quoted addresses kept; peers' ports change, so it is cleared when full
_quoted_addresses: Final[dict[tuple[str, int] | None, str]] = {}
_FLAGS: Final = {flag: quote(str(flag)) for flag in Flag}
_DIRECTIONS: Final = {direction: direction.value for direction in Direction}
_PROTOCOLS: Final = {"1.1": quote("HTTP/1.1"), "1.0": quote("HTTP/1.0"), "": '"http"'}


def hostport(endpoint: tuple[str, int] | None) -> str:
    """``10.0.0.1:80``, ``[fd00::1]:80``, or ``-``."""
    if endpoint is None:
        return "-"
    host, port = endpoint
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def entry_line(stamp: str, entry: dict[str, Any]) -> bytes:
    """One entry as its line: ``time`` first (unless it has one), compact JSON."""
    if "time" not in entry:
        entry = {"time": stamp, **entry}
    return _ENCODE(entry).encode() + b"\n"


def tcp_entry(
    conn: Intercepted,
    upstream: tuple[str, int],
    cluster: str,
    duration: float,
    received: int,
    sent: int,
    flag: Flag,
    error: str | None,
    pid: int,
) -> dict[str, Any]:
    """One relayed TCP connection (``duration`` in seconds)."""
    return {
        "direction": conn.direction.value,
        "downstream_peer": hostport(conn.peer),
        "original_dst": hostport(conn.original_dst),
        "upstream": hostport(upstream),
        "upstream_cluster": cluster,
        "protocol": "tcp",
        "bytes_received": received,
        "bytes_sent": sent,
        "response_flags": flag,  # a StrEnum: JSON writes its text
        "duration_ms": round(duration * 1000, 3),
        "error": error,
        "worker": pid,
    }


def http_entry(
    record: RequestRecord, service: str, span: SpanContext | None, pid: int
) -> dict[str, Any]:
    """One HTTP request, for writers other than the real log (``http_line`` is its line)."""
    upstream_ms = record.upstream_latency
    return {
        "direction": record.conn.direction.value,
        "protocol": f"HTTP/{record.http_version}" if record.http_version else "http",
        "method": record.method,
        "authority": record.authority,
        "path": record.path,
        "status": record.status,
        "response_flags": str(record.flag),
        "upstream_cluster": service,
        "version": record.version or UNKNOWN,
        "upstream": hostport(record.endpoint),
        "attempts": record.attempts,
        "duration_ms": round(record.duration * 1000.0, 3),
        "upstream_ms": None if upstream_ms is None else round(upstream_ms * 1000.0, 3),
        "bytes_received": record.bytes_received,
        "bytes_sent": record.bytes_sent,
        "request_id": record.request_id,
        "trace_id": span.trace_id if span else None,
        "span_id": span.span_id if span else None,
        "downstream_peer": hostport(record.conn.peer),
        "original_dst": hostport(record.conn.original_dst),
        "upgraded": record.upgraded,
        "worker": pid,
    }


def protocol_text(http_version: str) -> str:
    """The quoted ``protocol`` field: ``"HTTP/1.1"``, or ``"http"`` when unknown."""
    return _PROTOCOLS.get(http_version) or quote(f"HTTP/{http_version}")


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


_TEMPLATE: Final = (
    '{"time":"%s","direction":"%s","protocol":%s,"method":%s,"authority":%s,"path":%s,'
    '"status":%d,"response_flags":%s,"upstream_cluster":%s,"version":%s,"upstream":%s,'
    '"attempts":%d,"duration_ms":%s,"upstream_ms":%s,"bytes_received":%d,'
    '"bytes_sent":%d,"request_id":%s,"trace_id":%s,"span_id":%s,"downstream_peer":%s,'
    '"original_dst":%s,"upgraded":%s,"worker":%d}\n'
)


def http_line(
    stamp: str, record: RequestRecord, service: str, span: SpanContext | None, pid: int
) -> bytes:
    """One request's line, key for key and byte for byte what ``json.dumps`` makes of
    ``entry_line(stamp, http_entry(...))``."""
    upstream_ms = record.upstream_latency
    conn = record.conn
    return (
        _TEMPLATE
        % (
            stamp,  # digits, dashes, colons: nothing to escape
            _DIRECTIONS[conn.direction],  # "inbound" / "outbound"
            protocol_text(record.http_version),
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
