"""Istio's standard HTTP metrics and the proxy's internal ones, on a passed-in registry.

Request metrics are recorded once per request from a finished ``RequestRecord``; their
label children are cached per label set (``labels()`` validates and hashes seven
strings per call), and a request adds to plain counts that ``push`` moves into the
children's value cells once per batch: one bisection finds the bucket, where
``Histogram.observe`` walks the bounds in Python (a test checks both land in the same
cells, on every bucket boundary). Gauges use prometheus-client's ``livesum``
multiprocess mode so that with ``--workers N`` /metrics shows the sum over the live
workers.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping
from typing import Any, Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

HTTP_LABELS: Final = (
    "reporter",
    "source_workload",
    "destination_service_name",
    "destination_version",
    "response_code",
    "response_flags",
    "request_protocol",
)
# Istio's default buckets: milliseconds, and bytes (powers of ten up to 100 MB).
DURATION_BUCKETS_MS: Final = (
    0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000,
    300000, 600000, 1800000, 3600000,
)  # fmt: skip
BYTES_BUCKETS: Final = (1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000)


class RequestCells:
    """The value cells of one label set's request counter and three histograms.

    These are prometheus-client's own per-child values (``MutexValue``, or
    ``MmapedValue`` with ``--workers``), so exposition and multiprocess merging are
    unchanged; only the Python around each update is skipped. A request adds to plain
    counts here; ``push`` moves them into the cells, one locked update per cell per
    batch instead of seven per request.
    """

    __slots__ = (
        "count",
        "count_cell",
        "duration_bounds",
        "duration_buckets",
        "duration_cells",
        "duration_sum",
        "recorded",
        "rx_bounds",
        "rx_buckets",
        "rx_cells",
        "rx_sum",
        "tx_bounds",
        "tx_buckets",
        "tx_cells",
        "tx_sum",
    )

    def __init__(
        self,
        counter: Counter,
        duration: Histogram,
        rx: Histogram,
        tx: Histogram,
        recorded: list[RequestCells],
    ) -> None:
        self.recorded = recorded  # the label sets to push: joined on the first request
        self.count_cell = counter._value
        # Per histogram: its sum cell and bucket cells, its upper bounds (last: +Inf),
        # and what was recorded since the last push.
        self.duration_cells = (duration._sum, duration._buckets)
        self.duration_bounds = duration._upper_bounds
        self.rx_cells = (rx._sum, rx._buckets)
        self.rx_bounds = rx._upper_bounds
        self.tx_cells = (tx._sum, tx._buckets)
        self.tx_bounds = tx._upper_bounds
        self.count = 0
        self.duration_sum = 0.0
        self.rx_sum = self.tx_sum = 0
        self.duration_buckets = [0] * len(self.duration_bounds)
        self.rx_buckets = [0] * len(self.rx_bounds)
        self.tx_buckets = [0] * len(self.tx_bounds)

    def record(self, duration_ms: float, rx: int, tx: int) -> None:
        """One finished request (``Metrics.request``); in the registry after ``push``."""
        if not self.count:
            self.recorded.append(self)
        # As Histogram.observe: the sum, and the first bucket with amount <= bound.
        self.count += 1
        self.duration_sum += duration_ms
        self.duration_buckets[bisect_left(self.duration_bounds, duration_ms)] += 1
        self.rx_sum += rx
        self.rx_buckets[bisect_left(self.rx_bounds, rx)] += 1
        self.tx_sum += tx
        self.tx_buckets[bisect_left(self.tx_bounds, tx)] += 1

    def push(self) -> None:
        """Add what was recorded since the last push to the cells."""
        self.count_cell.inc(self.count)
        self.count = 0
        _push(self.duration_cells, self.duration_sum, self.duration_buckets)
        self.duration_sum = 0.0
        _push(self.rx_cells, self.rx_sum, self.rx_buckets)
        _push(self.tx_cells, self.tx_sum, self.tx_buckets)
        self.rx_sum = self.tx_sum = 0


def _push(cells: tuple[Any, list[Any]], total: float, counts: list[int]) -> None:
    sum_cell, bucket_cells = cells
    sum_cell.inc(total)
    for i, n in enumerate(counts):
        if n:
            bucket_cells[i].inc(n)
            counts[i] = 0


class Metrics:
    """The HTTP and mesh counting API (TCP: ``metrics.tcp``; config reloads: ``metrics.reload``)."""

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
        self._cells: dict[tuple[str, ...], RequestCells] = {}
        self._recorded: list[RequestCells] = []  # label sets with requests not pushed yet

    def request(self, labels: tuple[str, ...], duration_ms: float, rx: int, tx: int) -> None:
        """One finished HTTP request; ``labels`` in ``HTTP_LABELS`` order.

        It shows in the registry after the next ``push`` (``Observer.flush`` pushes
        after each batch, and before ``/metrics`` renders).
        """
        self.cells(labels).record(duration_ms, rx, tx)

    def cells(self, labels: tuple[str, ...]) -> RequestCells:
        """The request metrics of one label set: its ``record`` is ``request`` without
        the look-up, for a caller that keeps the cells of the label sets it sees."""
        cells = self._cells.get(labels)
        if cells is None:
            cells = self._cells[labels] = RequestCells(
                self.requests.labels(*labels),
                self.duration.labels(*labels),
                self.request_bytes.labels(*labels),
                self.response_bytes.labels(*labels),
                self._recorded,
            )
        return cells

    def push(self) -> None:
        """Move the requests recorded since the last push into the registry's cells."""
        recorded = self._recorded  # shared with every RequestCells: emptied in place
        batch = recorded[:]
        recorded.clear()
        for cells in batch:
            cells.push()

    def endpoint_health(self, service: str, counts: Mapping[Any, int]) -> None:
        """``counts``: health (``OutlierDetector.counts``' enum keys, or strings) → endpoints."""
        for health, count in counts.items():
            self.endpoints.labels(service, str(getattr(health, "value", health))).set(count)

    def overflow(self, service: str, kind: object) -> None:
        """``kind``: a ``proxy.policy.breaker.Resource`` (its value is the label) or a string."""
        self.overflows.labels(service, str(getattr(kind, "value", kind))).inc()
