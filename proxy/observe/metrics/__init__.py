"""Every Prometheus metric the proxy exports, one module per family, on a passed-in registry.

``tcp`` holds Istio's TCP counters and the L4 guards (``TcpMetrics``), ``http`` the
request metrics and the mesh's internal ones (``Metrics``), ``reload`` the config
reload pair (``ReloadMetrics``), ``overload`` the overload guard's
(``OverloadMetrics``). Names and labels are public (DESIGN.md §6); each
family is created once per registry, so tests use a fresh registry each.
"""

from __future__ import annotations

from proxy.observe.metrics.http import (
    BYTES_BUCKETS,
    DURATION_BUCKETS_MS,
    HTTP_LABELS,
    Metrics,
    RequestCells,
)
from proxy.observe.metrics.overload import OverloadMetrics
from proxy.observe.metrics.reload import RESULTS, ReloadMetrics
from proxy.observe.metrics.tcp import TCP_LABELS, ConnLabels, TcpMetrics

__all__ = [
    "BYTES_BUCKETS",
    "DURATION_BUCKETS_MS",
    "HTTP_LABELS",
    "RESULTS",
    "TCP_LABELS",
    "ConnLabels",
    "Metrics",
    "OverloadMetrics",
    "ReloadMetrics",
    "RequestCells",
    "TcpMetrics",
]
