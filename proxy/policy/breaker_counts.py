"""Circuit breakers' counters (Envoy's thresholds): hard caps on concurrent use.

Each resource kind is a counter with a limit. ``try_acquire`` takes one unit or
refuses (and counts the overflow, which becomes a 503 ``UO``); every successful
acquire must be matched by one ``release`` when the connection, pending request,
request or retry ends. Compiled (``proxy.compiled``): a request takes and releases
at least one unit.
"""

from __future__ import annotations

from proxy.policy.breaker import BreakerLimits, Resource
from proxy.policy.errors import AccountingError


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
