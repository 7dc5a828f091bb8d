"""The L4 metrics: Istio's standard TCP counters plus the proxy's own guards.

Counters are created on a registry that is passed in (a fresh one per test); with
``--workers N`` the registry is a private one and /metrics is rendered from a
MultiProcessCollector instead, which sums the workers' files.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter

from proxy.core.flags import Flag

TCP_LABELS = (
    "reporter",
    "source_workload",
    "destination_service_name",
    "destination_version",
    "response_flags",
    "request_protocol",
)


@dataclass(frozen=True)
class ConnLabels:
    """The label values of one relayed connection (response_flags is set at close)."""

    reporter: str
    source_workload: str
    destination_service_name: str
    destination_version: str = "unknown"
    request_protocol: str = "tcp"

    def values(self, flag: Flag) -> tuple[str, ...]:
        return (
            self.reporter,
            self.source_workload,
            self.destination_service_name,
            self.destination_version,
            flag,  # a StrEnum: the label value is its text
            self.request_protocol,
        )


class TcpMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        # Told when a connection closes (the cluster gauges may have moved).
        self.on_closed: Callable[[], None] | None = None
        self.sent = Counter(
            "istio_tcp_sent_bytes_total",
            "Bytes sent to the downstream client (the response direction).",
            TCP_LABELS,
            registry=registry,
        )
        self.received = Counter(
            "istio_tcp_received_bytes_total",
            "Bytes received from the downstream client (the request direction).",
            TCP_LABELS,
            registry=registry,
        )
        self.opened = Counter(
            "istio_tcp_connections_opened_total",
            "TCP connections opened.",
            TCP_LABELS,
            registry=registry,
        )
        self.closed = Counter(
            "istio_tcp_connections_closed_total",
            "TCP connections closed, by response flag (UF: upstream connect failed, "
            "UR: upstream reset, DC: downstream reset, UT: idle timeout).",
            TCP_LABELS,
            registry=registry,
        )
        self.loop_refusals = Counter(
            "mesh_loop_guard_refusals_total",
            "Connections closed at once because their original destination was the "
            "proxy itself (a direct dial to a capture port, or a redirect loop).",
            ("direction",),
            registry=registry,
        )
        self.detect = Counter(
            "mesh_protocol_detect_total",
            "Protocol detection outcome per intercepted connection: http, opaque (bytes that "
            "are not HTTP/1), timeout (the client sent nothing in time: server-speaks-first) "
            "or declared (a tcp or http service, or an opaque port: not sniffed).",
            ("direction", "result"),
            registry=registry,
        )
        self.connect_failures = Counter(
            "mesh_upstream_connect_failures_total",
            "Upstream connects that failed, by reason.",
            ("direction", "reason"),
            registry=registry,
        )

        # labels() validates and hashes six strings per call; a connection needs four
        # series, so children are cached per label set (a small, bounded set of services).
        self._children: dict[tuple[Counter, ConnLabels, Flag], Counter] = {}

    def _child(self, counter: Counter, labels: ConnLabels, flag: Flag) -> Counter:
        key = (counter, labels, flag)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = counter.labels(*labels.values(flag))
        return child

    def detected(self, direction: str, result: str) -> None:
        self.detect.labels(direction, result).inc()

    def connection_opened(self, labels: ConnLabels) -> None:
        self._child(self.opened, labels, Flag.NONE).inc()

    def add_bytes(self, labels: ConnLabels, flag: Flag, received: int, sent: int) -> None:
        if received:
            self._child(self.received, labels, flag).inc(received)
        if sent:
            self._child(self.sent, labels, flag).inc(sent)

    def connection_closed(self, labels: ConnLabels, flag: Flag) -> None:
        self._child(self.closed, labels, flag).inc()
        if self.on_closed is not None:
            self.on_closed()
