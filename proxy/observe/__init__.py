"""Telemetry: Istio-standard HTTP metrics, internal metrics, Zipkin traces, access log.

``Observer`` is what the HTTP layer reports each request to; ``Metrics`` is the
counting API for the rest of the proxy; ``AccessLog`` and ``ZipkinExporter`` do the
only I/O, off the request path.
"""

from __future__ import annotations

from proxy.observe.accesslog import AccessLog, open_stdout_nonblocking
from proxy.observe.exporter import CollectorUrl, ZipkinExporter
from proxy.observe.identity import Workload, resolve_workload, workload_from_pod_name
from proxy.observe.metrics import Metrics
from proxy.observe.observer import Observer, Watch
from proxy.observe.runtime import Telemetry
from proxy.observe.tracecontext import SpanContext, new_span, parse_b3, parse_traceparent

__all__ = [
    "AccessLog",
    "CollectorUrl",
    "Metrics",
    "Observer",
    "SpanContext",
    "Telemetry",
    "Watch",
    "Workload",
    "ZipkinExporter",
    "new_span",
    "open_stdout_nonblocking",
    "parse_b3",
    "parse_traceparent",
    "resolve_workload",
    "workload_from_pod_name",
]
