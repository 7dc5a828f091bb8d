"""The overload guard's metrics: refusals by reason, and the guard's levels at scrape.

Refusals are counted as they happen (rare: only under overload, never per request);
the levels (open client connections, bytes held in full buffers) are read from the
worker's ``Overload`` just before ``/metrics`` renders, so the hot path never touches
a metric. Gauges sum over workers (``livesum``), like the endpoint gauges.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from proxy.policy.overload import Overload, Reason


class OverloadMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.rejections = Counter(
            "mesh_overload_rejections_total",
            "Connections closed unserved and requests answered 503 by the overload guard "
            "(reason: downstream_connections|pending_requests|buffered_bytes).",
            ("reason",), registry=r,
        )  # fmt: skip
        for reason in Reason:  # every series shows, at 0, before the first refusal
            self.rejections.labels(reason.value)
        self.connections = Gauge(
            "mesh_downstream_connections", "Client connections open on the capture ports.",
            registry=r, multiprocess_mode="livesum",
        )  # fmt: skip
        self.buffered = Gauge(
            "mesh_overload_buffered_bytes",
            "Bytes held by connections whose buffer is full (the max_buffered_bytes total).",
            registry=r, multiprocess_mode="livesum",
        )  # fmt: skip

    def rejected(self, reason: Reason) -> None:
        self.rejections.labels(reason.value).inc()

    def sample(self, overload: Overload) -> None:
        self.connections.set(overload.connections)
        self.buffered.set(overload.buffered)
