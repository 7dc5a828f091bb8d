"""Outbound passthrough: the app dialled somewhere no service claims; send it there.

This is Istio's PassthroughCluster. Configured ``tcp`` services are routed by the
mesh (``proxy.mesh.tcp``), which falls back to this router for everything else.
"""

from __future__ import annotations

from dataclasses import dataclass

from proxy.core.names import PASSTHROUGH_CLUSTER
from proxy.l4.conn import Intercepted
from proxy.l4.route import Route
from proxy.observe.metrics import ConnLabels


@dataclass(frozen=True)
class OutboundRouter:
    workload: str

    def route(self, conn: Intercepted) -> Route:
        host, port = conn.original_dst
        labels = ConnLabels("source", self.workload, PASSTHROUGH_CLUSTER)
        return Route(host, port, conn.family, None, labels)
