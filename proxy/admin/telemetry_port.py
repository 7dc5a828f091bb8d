"""The telemetry port (0.0.0.0:15020): /metrics, /healthz/ready, /healthz/live.

Read-only and excluded from inbound capture by the interceptor. /metrics renders the
exposition registry it is given (a MultiProcessCollector's with ``--workers N``, so
every worker answers with the sum over all workers).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from proxy.admin.httpmini import Endpoints, Reply, Request


@dataclass
class Readiness:
    """What /healthz/ready answers: ready once the listeners are up, until draining."""

    listening: bool = False
    draining: bool = False

    @property
    def ready(self) -> bool:
        return self.listening and not self.draining


def telemetry_endpoints(
    readiness: Readiness,
    exposition: CollectorRegistry,
    before_scrape: Callable[[], None] | None = None,
) -> Endpoints:
    """``before_scrape`` records what this process still holds back (``Observer.flush``)."""

    def metrics(_: Request) -> Reply:
        if before_scrape is not None:
            before_scrape()
        return Reply(200, generate_latest(exposition), CONTENT_TYPE_LATEST)

    def ready(_: Request) -> Reply:
        if readiness.ready:
            return Reply(200, b"ready\n")
        why = "draining" if readiness.draining else "listeners not up"
        return Reply(503, f"not ready: {why}\n".encode())

    def live(_: Request) -> Reply:
        return Reply(200, b"live\n")

    endpoints = Endpoints()
    endpoints.add("GET", "/metrics", metrics)
    endpoints.add("GET", "/healthz/ready", ready)
    endpoints.add("GET", "/healthz/live", live)
    return endpoints
