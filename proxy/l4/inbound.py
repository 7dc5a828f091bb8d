"""Inbound routing: forward to the app on the original destination, from 127.0.0.6.

The interceptor's rules let traffic from 127.0.0.6 (::6) over lo through untouched,
so the proxy's own forward is not captured again (the addresses, and why they are
bindable, are in ``proxy.l4.dial``; ::6 is added to lo by the init step).
"""

from __future__ import annotations

from dataclasses import dataclass

from proxy.core.names import INBOUND_PASSTHROUGH_CLUSTER_IPV4, INBOUND_PASSTHROUGH_CLUSTER_IPV6
from proxy.l4.conn import Intercepted
from proxy.l4.dial import PASSTHROUGH_SOURCE4, PASSTHROUGH_SOURCE6
from proxy.l4.route import Route
from proxy.observe.metrics import ConnLabels


@dataclass(frozen=True)
class InboundRouter:
    workload: str

    def route(self, conn: Intercepted) -> Route:
        host, port = conn.original_dst
        if conn.family == 6:
            source, cluster = PASSTHROUGH_SOURCE6, INBOUND_PASSTHROUGH_CLUSTER_IPV6
        else:
            source, cluster = PASSTHROUGH_SOURCE4, INBOUND_PASSTHROUGH_CLUSTER_IPV4
        # Without mTLS the caller's workload is unknown; reporter=destination says it is us.
        labels = ConnLabels("destination", "unknown", cluster)
        return Route(host, port, conn.family, source, labels)
