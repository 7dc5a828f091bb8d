"""Outbound routing: the app dialled somewhere; send the connection there.

With no config (or a destination no service claims) this is passthrough to the
original destination, as Istio's PassthroughCluster. A configured ``tcp`` service
is matched by its address:port and its endpoints are taken in round robin.
"""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from proxy.conn import Intercepted
from proxy.metrics import ConnLabels
from proxy.route import Route

PASSTHROUGH = "PassthroughCluster"


@dataclass(frozen=True)
class TcpService:
    """A service whose connections go to its endpoints instead of the dialled address."""

    name: str
    endpoints: tuple[tuple[str, int], ...]
    version: str = "unknown"


@dataclass
class OutboundRouter:
    workload: str
    services: Mapping[tuple[str, int], TcpService] = field(default_factory=dict)
    _cycles: dict[str, Iterator[tuple[str, int]]] = field(default_factory=dict)

    def route(self, conn: Intercepted) -> Route:
        service = self.services.get(conn.original_dst)
        if service is None or not service.endpoints:
            host, port = conn.original_dst
            labels = ConnLabels("source", self.workload, PASSTHROUGH)
            return Route(host, port, conn.family, None, labels)
        cycle = self._cycles.setdefault(service.name, itertools.cycle(service.endpoints))
        host, port = next(cycle)
        family = ipaddress.ip_address(host).version
        labels = ConnLabels("source", self.workload, service.name, service.version)
        return Route(host, port, family, None, labels, opaque=True)
