"""Circuit breakers per service (Envoy's thresholds): hard caps on concurrent use.

Each resource kind is a counter with a limit (``breaker_counts.CircuitBreakers``,
compiled: it runs on every request). This module holds the kinds and the limits,
which validate themselves and so stay Python (see ``proxy.compiled``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from proxy.policy.errors import InvalidParameter


class Resource(Enum):
    CONNECTIONS = "max_connections"  # upstream connections open
    PENDING_REQUESTS = "max_pending_requests"  # requests waiting for a connection
    REQUESTS = "max_requests"  # requests in flight
    RETRIES = "max_retries"  # retries in flight

    # Members are singletons: the identity hash (C) keys the counters as well as
    # Enum's own ``hash(self._name_)``, a Python call four times per request.
    __hash__ = object.__hash__


@dataclass(frozen=True)
class BreakerLimits:
    max_connections: int = 1024
    max_pending_requests: int = 1024
    max_requests: int = 1024
    max_retries: int = 3

    def __post_init__(self) -> None:
        for kind in Resource:
            value = getattr(self, kind.value)
            if not (isinstance(value, int) and value >= 0):
                raise InvalidParameter(
                    f"circuit_breaker.{kind.value}: must be an int >= 0, got {value!r}"
                )

    def limit(self, kind: Resource) -> int:
        value: int = getattr(self, kind.value)
        return value
