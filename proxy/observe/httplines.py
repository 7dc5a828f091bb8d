"""The real access log's HTTP lines, with what repeats from line to line formatted once.

``logline.http_line`` formats every field of every line. Most of them repeat: a
connection's requests share its direction, addresses and (nearly always) protocol,
method and authority, and the run from ``status`` to ``attempts`` takes a few values
per service. ``HttpLines`` keeps those runs as ready text (per connection, and per
outcome), so a line joins a dozen pieces instead of formatting two dozen fields, the
strings that change still escaped by json's C escaper; the bytes are ``http_line``'s
(a test compares them on hostile inputs).
"""

from __future__ import annotations

from typing import Final

from proxy.core.flags import Flag
from proxy.http.model import Endpoint, RequestRecord
from proxy.observe.identity import UNKNOWN
from proxy.observe.logline import milliseconds, protocol_text, quote, quoted_hostport
from proxy.observe.tracecontext import SpanContext

_MAX_CACHED: Final = 4096  # entries per cache; cleared when full (peers' ports come and go)
_Outcome = tuple[int, Flag, str, str, "Endpoint | None", int]


class _Conn:
    """One connection's ready text: from ``direction`` to ``path``, and after ``span_id``."""

    __slots__ = ("authority", "conn", "head", "method", "tails", "version")

    def __init__(self, record: RequestRecord, pid: int) -> None:
        conn = self.conn = record.conn  # kept: a recycled id() never passes for it
        self.version = record.http_version
        self.method = record.method
        self.authority = record.authority
        self.head = (
            f'","direction":"{conn.direction.value}","protocol":{protocol_text(self.version)},'
            f'"method":{quote(self.method)},"authority":{quote(self.authority)},"path":'
        )
        peers = (
            f',"downstream_peer":{quoted_hostport(conn.peer)},'
            f'"original_dst":{quoted_hostport(conn.original_dst)},"upgraded":'
        )
        end = f',"worker":{pid}}}\n'
        self.tails = (f"{peers}false{end}", f"{peers}true{end}")  # by ``upgraded``


class HttpLines:
    """Renders ``http_line(stamp, record, service, span, pid)`` for one process."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._conns: dict[int, _Conn] = {}
        self._outcomes: dict[_Outcome, str] = {}

    def line(
        self, stamp: str, record: RequestRecord, service: str, span: SpanContext | None
    ) -> bytes:
        conn = record.conn
        parts = self._conns.get(id(conn))
        if (
            parts is None
            or parts.conn is not conn
            or parts.method != record.method
            or parts.authority != record.authority
            or parts.version != record.http_version
        ):
            parts = self._conn(record)
        endpoint = record.endpoint
        key = (record.status, record.flag, service, record.version, endpoint, record.attempts)
        outcome = self._outcomes.get(key)
        if outcome is None:
            outcome = self._outcome(key)
        upstream_ms = record.upstream_latency
        # One f-string: the compiler joins its pieces in one pass (``%`` parses a template).
        # Every piece is a typed str or int with no format spec: mypyc then builds the
        # line in one call, where a spec or an untyped piece costs a str.format each.
        return (
            f'{{"time":"{stamp}{parts.head}{quote(record.path)}{outcome}'
            f"{milliseconds(record.duration)}"
            f',"upstream_ms":{"null" if upstream_ms is None else milliseconds(upstream_ms)}'
            f',"bytes_received":{record.bytes_received},"bytes_sent":{record.bytes_sent}'
            f',"request_id":{quote(record.request_id)}'
            f',"trace_id":{quote(span.trace_id) if span else "null"}'
            f',"span_id":{quote(span.span_id) if span else "null"}'
            f"{parts.tails[1] if record.upgraded else parts.tails[0]}"
        ).encode()

    def _conn(self, record: RequestRecord) -> _Conn:
        if len(self._conns) >= _MAX_CACHED:
            self._conns.clear()
        parts = self._conns[id(record.conn)] = _Conn(record, self.pid)
        return parts

    def _outcome(self, key: _Outcome) -> str:
        """From ``status`` to ``duration_ms``'s value."""
        if len(self._outcomes) >= _MAX_CACHED:
            self._outcomes.clear()
        status, flag, service, version, endpoint, attempts = key
        text = self._outcomes[key] = (
            f',"status":{status:d},"response_flags":{quote(str(flag))},'
            f'"upstream_cluster":{quote(service)},"version":{quote(version or UNKNOWN)},'
            f'"upstream":{quoted_hostport(endpoint)},"attempts":{attempts:d},"duration_ms":'
        )
        return text
