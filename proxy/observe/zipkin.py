"""Zipkin v2 spans (the JSON the ``/api/v2/spans`` endpoint takes), built from records.

One span per proxied request: kind CLIENT for outbound, SERVER for inbound, named
like Istio's (``service:port/*``, bounded); tags are strings as the v2 schema wants.
Pure: the wall-clock start is carried in by the caller.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from proxy.core.names import REQUEST_ID
from proxy.http.model import RequestRecord
from proxy.l4.conn import Direction
from proxy.observe.identity import Workload
from proxy.observe.logline import hostport
from proxy.observe.tracecontext import SpanContext

_REQUEST_ID_TAG = "guid:" + REQUEST_ID.decode()  # Envoy's tag name for the request id


def _endpoint(address: tuple[str, int] | None, service: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if service:
        out["serviceName"] = service
    if address is not None:
        host, port = address
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            ip = None
        if ip is not None:
            out["ipv6" if ip.version == 6 else "ipv4"] = host
        if port:
            out["port"] = port
    return out


def build_span(
    ctx: SpanContext,
    record: RequestRecord,
    local: Workload,
    service: str,
    start_wall: float,
) -> dict[str, Any]:
    """The Zipkin v2 JSON object of this hop; ``start_wall`` is Unix seconds."""
    outbound = record.conn.direction is Direction.OUTBOUND
    port = record.endpoint[1] if record.endpoint else record.conn.original_dst[1]
    tags = {
        "http.method": record.method,
        "http.url": f"http://{record.authority}{record.path}",
        "http.status_code": str(record.status),
        "http.protocol": f"HTTP/{record.http_version}",
        "response_flags": str(record.flag),
        "upstream_cluster": service,
        "upstream_address": hostport(record.endpoint),
        "request_size": str(record.bytes_received),
        "response_size": str(record.bytes_sent),
        "mesh.attempts": str(record.attempts),
        _REQUEST_ID_TAG: record.request_id,
        "node_id": local.pod or local.name,
        "component": "proxy",
    }
    if record.status == 0 or record.status >= 500:
        tags["error"] = "true"
    remote = record.endpoint if outbound else record.conn.peer
    span: dict[str, Any] = {
        "traceId": ctx.trace_id,
        "id": ctx.span_id,
        "kind": "CLIENT" if outbound else "SERVER",
        "name": f"{service}:{port}/*",
        "timestamp": int(start_wall * 1_000_000),
        "duration": max(1, int(record.duration * 1_000_000)),  # v2: at least 1 µs
        "localEndpoint": _endpoint(None, local.service_name),
        "remoteEndpoint": _endpoint(remote, service if outbound else None),
        "tags": tags,
    }
    if ctx.parent_id is not None:
        span["parentId"] = ctx.parent_id
    return span
