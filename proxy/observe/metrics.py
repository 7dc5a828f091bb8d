"""Istio's standard HTTP metrics and the proxy's internal ones, on a passed-in registry.

Request metrics are recorded once per request from a finished ``RequestRecord``; their
label children are cached per label set (``labels()`` validates and hashes seven
strings per call). Gauges use prometheus-client's ``livesum`` multiprocess mode so
that with ``--workers N`` /metrics shows the sum over the live workers. The config
reload metrics live with the reloader (``proxy.reload.metrics``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

HTTP_LABELS = (
    "reporter",
    "source_workload",
    "destination_service_name",
    "destination_version",
    "response_code",
    "response_flags",
    "request_protocol",
)
# Istio's default buckets: milliseconds, and bytes (powers of ten up to 100 MB).
DURATION_BUCKETS_MS = (
    0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000,
    300000, 600000, 1800000, 3600000,
)  # fmt: skip
BYTES_BUCKETS = (1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000)

_Children = tuple[Counter, Histogram, Histogram, Histogram]


class Metrics:
    """The counting API the rest of the proxy uses (besides ``TcpMetrics``)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.requests = Counter("istio_requests_total", "HTTP requests.", HTTP_LABELS, registry=r)
        self.duration = Histogram(
            "istio_request_duration_milliseconds",
            "HTTP request duration, request head in to response done (ms).",
            HTTP_LABELS,
            buckets=DURATION_BUCKETS_MS,
            registry=r,
        )
        self.request_bytes = Histogram(
            "istio_request_bytes", "HTTP request body sizes.", HTTP_LABELS,
            buckets=BYTES_BUCKETS, registry=r,
        )  # fmt: skip
        self.response_bytes = Histogram(
            "istio_response_bytes", "HTTP response body sizes.", HTTP_LABELS,
            buckets=BYTES_BUCKETS, registry=r,
        )  # fmt: skip
        self.retries = Counter(
            "mesh_upstream_retries_total",
            "Upstream attempts after the first (counted from each request's attempts).",
            ("service",),
            registry=r,
        )  # fmt: skip
        self.ejections = Counter(
            "mesh_outlier_ejections_total", "Endpoints ejected by outlier detection.",
            ("service",), registry=r,
        )  # fmt: skip
        self.endpoints = Gauge(
            "mesh_upstream_endpoints", "Upstream endpoints by health (healthy|ejected|probing).",
            ("service", "health"), registry=r, multiprocess_mode="livesum",
        )  # fmt: skip
        self.overflows = Counter(
            "mesh_circuit_breaker_overflows_total",
            "Requests refused by a circuit breaker, by kind (max_connections|"
            "max_pending_requests|max_requests|max_retries|retry_budget).",
            ("service", "kind"), registry=r,
        )  # fmt: skip
        self.spans_exported = Counter(
            "mesh_tracing_spans_exported_total", "Spans the Zipkin collector accepted.",
            registry=r,
        )  # fmt: skip
        self.spans_dropped = Counter(
            "mesh_tracing_spans_dropped_total",
            "Spans not exported (reason: queue_full|export_failed).", ("reason",), registry=r,
        )  # fmt: skip
        self.log_dropped = Counter(
            "mesh_access_log_dropped_total",
            "Access log lines dropped because stdout did not keep up.", registry=r,
        )  # fmt: skip
        self._children: dict[tuple[str, ...], _Children] = {}

    def request(self, labels: tuple[str, ...], duration_ms: float, rx: int, tx: int) -> None:
        """One finished HTTP request; ``labels`` in ``HTTP_LABELS`` order."""
        children = self._children.get(labels)
        if children is None:
            children = self._children[labels] = (
                self.requests.labels(*labels),
                self.duration.labels(*labels),
                self.request_bytes.labels(*labels),
                self.response_bytes.labels(*labels),
            )
        children[0].inc()
        children[1].observe(duration_ms)
        children[2].observe(rx)
        children[3].observe(tx)

    def endpoint_health(self, service: str, counts: Mapping[Any, int]) -> None:
        """``counts``: health (``OutlierDetector.counts``' enum keys, or strings) → endpoints."""
        for health, count in counts.items():
            self.endpoints.labels(service, str(getattr(health, "value", health))).set(count)

    def overflow(self, service: str, kind: object) -> None:
        """``kind``: a ``proxy.policy.breaker.Resource`` (its value is the label) or a string."""
        self.overflows.labels(service, str(getattr(kind, "value", kind))).inc()
