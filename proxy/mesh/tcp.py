"""L4 routing from the same runtime clusters: ``tcp`` services get an endpoint each.

A connection to a ``tcp`` service's address:port goes to one of the endpoints
outlier detection lets through; anything else is passthrough as before. A connection
to a service declared ``http`` is marked so: the listener hands it to the HTTP handler
without sniffing, as Istio does for an explicitly declared protocol (no detection
timeout to wait for, and none to misfire when the proxy is busy). Endpoints are
picked by the service's policy, as for HTTP (``ServicePolicy.pick``): outlier
detection filters them, and since L4 reports no per-connection latency or load
back, the latency- and load-aware balancers (peak_ewma, least_request) fall back
to round robin here; ``round_robin`` and ``random`` keep their weights.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import random

from proxy.l4.conn import Intercepted
from proxy.l4.outbound import OutboundRouter
from proxy.l4.route import Route
from proxy.mesh.runtime import Mesh
from proxy.observe.metrics import ConnLabels


class MeshTcpRouter:
    """A ``proxy.l4.route.Router`` for outbound connections that reads the live ``Mesh``."""

    def __init__(self, workload: str, mesh: Mesh, rng: random.Random | None = None) -> None:
        self.workload = workload
        self.mesh = mesh
        self.rng = rng or random.Random()
        self._passthrough = OutboundRouter(workload)

    def route(self, conn: Intercepted) -> Route:
        state = self.mesh.state
        plan = state.tcp.get(conn.original_dst)
        if plan is None:
            route = self._passthrough.route(conn)
            if conn.original_dst in state.http:
                return dataclasses.replace(route, http=True)
            return route
        cluster, name = plan.cluster, plan.service.name
        endpoint = cluster.policy.pick(self.rng, self.mesh.clock())
        if endpoint is None:  # nothing discovered yet: the dialled address, counted as ours
            host, port = conn.original_dst
            labels = ConnLabels("source", self.workload, name)
            return Route(host, port, conn.family, None, labels, opaque=True)
        host, port = endpoint
        version = cluster.versions.get(endpoint, "unknown")
        labels = ConnLabels("source", self.workload, name, version)
        return Route(host, port, ipaddress.ip_address(host).version, None, labels, opaque=True)
