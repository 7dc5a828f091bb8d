"""The HTTP access log line, built from a precompiled template instead of a dict.

``json.dumps`` of a 23-key dict walks the dict and dispatches on every value's type
per request; the keys and their order never change, so the line is one %-format with
each string escaped by the C escaper json itself uses (same bytes as ``json.dumps``).
``Observer.log_entry`` keeps the dict shape for other writers and for the tests.
"""

from __future__ import annotations

import json

from proxy.http.model import RequestRecord
from proxy.observe.accesslog import hostport
from proxy.observe.identity import UNKNOWN
from proxy.observe.tracecontext import SpanContext

# json's own C escaper: quotes, backslashes, control and non-ASCII characters as json.dumps.
quote = json.encoder.encode_basestring_ascii

_TEMPLATE = (
    '{"time":"%s","direction":"%s","protocol":%s,"method":%s,"authority":%s,"path":%s,'
    '"status":%d,"response_flags":%s,"service":%s,"version":%s,"upstream":%s,'
    '"attempts":%d,"duration_ms":%r,"upstream_ms":%s,"bytes_received":%d,'
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
            quote(f"HTTP/{version}") if version else '"http"',
            quote(record.method),
            quote(record.authority),
            quote(record.path),
            record.status,
            quote(str(record.flag)),
            quote(service),
            quote(record.version or UNKNOWN),
            quote(hostport(record.endpoint)),
            record.attempts,
            round(record.duration * 1000.0, 3),
            "null" if upstream_ms is None else repr(round(upstream_ms * 1000.0, 3)),
            record.bytes_received,
            record.bytes_sent,
            quote(record.request_id),
            quote(span.trace_id) if span else "null",
            quote(span.span_id) if span else "null",
            quote(hostport(conn.peer)),
            quote(hostport(conn.original_dst)),
            "true" if record.upgraded else "false",
            pid,
        )
    ).encode()
