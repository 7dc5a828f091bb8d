"""Circuit breakers per service (Envoy's thresholds): hard caps on concurrent use.

Each resource kind is a counter with a limit. ``try_acquire`` takes one unit or
refuses (and counts the overflow, which becomes a 503 ``UO``); every successful
acquire must be matched by one ``release`` when the connection, pending request,
request or retry ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from proxy.policy.errors import AccountingError, InvalidParameter


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


class CircuitBreakers:
    def __init__(self, limits: BreakerLimits | None = None) -> None:
        self.limits = limits or BreakerLimits()
        # The limits are frozen: read once, not through getattr on every acquire.
        self._limit = {kind: self.limits.limit(kind) for kind in Resource}
        self._in_use = dict.fromkeys(Resource, 0)
        self._overflows = dict.fromkeys(Resource, 0)

    def try_acquire(self, kind: Resource) -> bool:
        """Take one unit of ``kind``; False (and one overflow counted) at the limit."""
        if self._in_use[kind] >= self._limit[kind]:
            self._overflows[kind] += 1
            return False
        self._in_use[kind] += 1
        return True

    def release(self, kind: Resource) -> None:
        if self._in_use[kind] == 0:
            raise AccountingError(f"release({kind.value}): nothing acquired")
        self._in_use[kind] -= 1

    def in_use(self, kind: Resource) -> int:
        return self._in_use[kind]

    def overflows(self, kind: Resource) -> int:
        """Refusals so far (the ``mesh_circuit_breaker_overflows_total`` counter)."""
        return self._overflows[kind]
