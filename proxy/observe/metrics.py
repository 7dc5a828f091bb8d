"""Istio's standard HTTP metrics and the proxy's internal ones, on a passed-in registry.

Request metrics are recorded once per request from a finished ``RequestRecord``; their
label children are cached per label set (``labels()`` validates and hashes seven
strings per call), and a request updates the children's value cells directly: one
bisection finds the bucket, where ``Histogram.observe`` walks the bounds in Python
(a test checks both land in the same cells, on every bucket boundary). Gauges use
prometheus-client's ``livesum`` multiprocess mode so that with ``--workers N``
/metrics shows the sum over the live workers. The config
reload metrics live with the reloader (``proxy.reload.metrics``).
"""

from __future__ import annotations

from bisect import bisect_left
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


class _Cells:
    """The value cells of one label set's request counter and three histograms.

    These are prometheus-client's own per-child values (``MutexValue``, or
    ``MmapedValue`` with ``--workers``), so exposition and multiprocess merging are
    unchanged; only the Python around each update is skipped.
    """

    __slots__ = ("count", "duration", "request_bytes", "response_bytes")

    def __init__(self, counter: Counter, duration: Histogram, rx: Histogram, tx: Histogram) -> None:
        self.count = counter._value
        # Per histogram: its sum cell, its bucket cells, its upper bounds (last: +Inf).
        self.duration = (duration._sum, duration._buckets, duration._upper_bounds)
        self.request_bytes = (rx._sum, rx._buckets, rx._upper_bounds)
        self.response_bytes = (tx._sum, tx._buckets, tx._upper_bounds)

    def record(self, duration_ms: float, rx: int, tx: int) -> None:
        self.count.inc(1)
        # As Histogram.observe: the sum, and the first bucket with amount <= bound.
        total, buckets, bounds = self.duration
        total.inc(duration_ms)
        buckets[bisect_left(bounds, duration_ms)].inc(1)
        total, buckets, bounds = self.request_bytes
        total.inc(rx)
        buckets[bisect_left(bounds, rx)].inc(1)
        total, buckets, bounds = self.response_bytes
        total.inc(tx)
        buckets[bisect_left(bounds, tx)].inc(1)


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
        self._cells: dict[tuple[str, ...], _Cells] = {}

    def request(self, labels: tuple[str, ...], duration_ms: float, rx: int, tx: int) -> None:
        """One finished HTTP request; ``labels`` in ``HTTP_LABELS`` order."""
        cells = self._cells.get(labels)
        if cells is None:
            cells = self._cells[labels] = _Cells(
                self.requests.labels(*labels),
                self.duration.labels(*labels),
                self.request_bytes.labels(*labels),
                self.response_bytes.labels(*labels),
            )
        cells.record(duration_ms, rx, tx)

    def endpoint_health(self, service: str, counts: Mapping[Any, int]) -> None:
        """``counts``: health (``OutlierDetector.counts``' enum keys, or strings) → endpoints."""
        for health, count in counts.items():
            self.endpoints.labels(service, str(getattr(health, "value", health))).set(count)

    def overflow(self, service: str, kind: object) -> None:
        """``kind``: a ``proxy.policy.breaker.Resource`` (its value is the label) or a string."""
        self.overflows.labels(service, str(getattr(kind, "value", kind))).inc()
