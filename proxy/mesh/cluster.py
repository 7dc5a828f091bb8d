"""A cluster: one service's endpoints with their policy state and connection pool.

The ``ServicePolicy`` (balancer, outlier detection, breakers, budget) is keyed by
``(address, port)``. Membership changes go through ``set_endpoints``, which keeps the
state of endpoints that stay and drains the ones that leave (in-flight attempts
finish, nothing new is sent). What lies outside a subset is computed once per subset
and membership, so a request narrows the pick without building a set.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from proxy.config.model import Endpoint, Subset
from proxy.http.codec import CodecFactory, H11Codec
from proxy.http.pool import Opener, UpstreamPool
from proxy.policy import Choice, Outcome, Resource, ServiceParams, ServicePolicy
from proxy.policy.overload import Overload

EndpointKey = tuple[str, int]
NOTHING: Final[frozenset[EndpointKey]] = frozenset()
UNKNOWN_VERSION: Final = "unknown"
# A subset, the endpoints it leaves out, and the version its endpoints share.
SubsetFacts = tuple[Subset | None, frozenset[EndpointKey], str]


class Cluster:
    def __init__(
        self,
        name: str,
        params: ServiceParams,
        opener: Opener | None = None,
        codec: CodecFactory = H11Codec,
        overload: Overload | None = None,
    ) -> None:
        self.name = name
        self.params = params
        self.policy: ServicePolicy[EndpointKey] = ServicePolicy(params)
        limits = params.breakers
        # Envoy counts these per cluster; here they bound each endpoint's pool.
        self.pool = UpstreamPool(
            max_per_endpoint=max(1, limits.max_connections),
            max_pending=limits.max_pending_requests,
            opener=opener,
            codec=codec,
            overload=overload,
        )
        self.endpoints: tuple[Endpoint, ...] = ()
        self.versions: dict[EndpointKey, str] = {}
        self._subsets: dict[int, SubsetFacts] = {}  # id(subset) -> what it selects
        self.ejections: dict[EndpointKey, int] = {}  # per endpoint, for /clusters
        self.pending_overflows = 0  # requests refused: connections and queue full

    def report_attempt(
        self, choice: Choice[EndpointKey], outcome: Outcome, now: float, latency: float | None
    ) -> None:
        """End an attempt: feeds the balancer and outlier detection, counts ejections."""
        ejection = self.policy.report(choice, outcome, now, latency)
        if ejection is not None:
            self.ejections[ejection.endpoint] = self.ejections.get(ejection.endpoint, 0) + 1

    def forget_subsets(self) -> None:
        """A new config brings new Subset objects: their facts are found anew (and the
        old ones, which the cache holds, are let go)."""
        self._subsets = {}

    def set_endpoints(self, endpoints: Sequence[Endpoint], now: float) -> None:
        self.forget_subsets()  # who a subset selects may change with them
        given = tuple(endpoints)
        if given == self.endpoints:
            return  # same addresses, weights and labels: most services at most reloads
        weights = {(e.address, e.port): float(e.weight) for e in given}
        self.policy.set_endpoints(weights, now)
        self.endpoints = given
        self.versions = {
            (e.address, e.port): e.labels.get("version", UNKNOWN_VERSION) for e in given
        }

    def outside(self, subset: Subset | None) -> frozenset[EndpointKey]:
        """The endpoints a subset does not select (excluded from its picks)."""
        if subset is None:
            return NOTHING
        return self.subset_facts(subset)[1]

    def subset_version(self, subset: Subset | None) -> str:
        """The ``version`` label all of a subset's endpoints share, else ``unknown``."""
        return self.subset_facts(subset)[2]

    def subset_facts(self, subset: Subset | None) -> SubsetFacts:
        """``(subset, outside, version)``: ``outside`` and ``subset_version`` in one call
        (a request routed to a subset needs both)."""
        # Looked up by identity: hashing a Subset sorts its selector on every request.
        # The entry holds the subset itself, so its id cannot be reused while cached.
        facts = self._subsets.get(id(subset))
        if facts is None or facts[0] is not subset:
            chosen: set[str] = set()
            outside: set[EndpointKey] = set()
            for e in self.endpoints:
                if subset is None or subset.selects(e.labels):
                    chosen.add(e.labels.get("version", UNKNOWN_VERSION))
                else:
                    outside.add((e.address, e.port))
            version = chosen.pop() if len(chosen) == 1 else UNKNOWN_VERSION
            facts = self._subsets[id(subset)] = (subset, frozenset(outside), version)
        return facts

    def overflows(self) -> dict[str, int]:
        breakers = self.policy.breakers
        return {
            Resource.CONNECTIONS.value: breakers.overflows(Resource.CONNECTIONS),
            Resource.PENDING_REQUESTS.value: self.pending_overflows,
            Resource.REQUESTS.value: breakers.overflows(Resource.REQUESTS),
            Resource.RETRIES.value: breakers.overflows(Resource.RETRIES),
        }

    def pool_counts(self) -> dict[str, int]:
        """Upstream connections of this cluster's pool: ``open`` (idle included), ``idle``."""
        keys = {(e.address, e.port) for e in self.endpoints}
        pool = self.pool
        return {
            "open": sum(pool.open_connections(k) for k in keys),
            "idle": sum(pool.idle_connections(k) for k in keys),
        }

    def report(self, now: float) -> dict[str, Any]:
        """This cluster as the admin ``/clusters`` page shows it."""
        rows = []
        for r in self.policy.clusters(now):
            host, port = r.endpoint
            rows.append(
                {
                    "address": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
                    "version": self.versions.get(r.endpoint, UNKNOWN_VERSION),
                    "health": "draining" if r.health is None else r.health.value,
                    "ejected_until": r.ejected_until,
                    "ejections": self.ejections.get(r.endpoint, 0),
                    "ewma_ms": round(r.ewma_ms, 3),
                    "in_flight": r.in_flight,
                    "weight": r.weight,
                    "connections": self.pool.open_connections(r.endpoint),
                }
            )
        return {
            "name": self.name,
            "load_balancer": self.params.balancing.balancer,
            "ejections_total": self.policy.detector.ejections_total,
            # Refusals per circuit-breaker threshold (mesh_circuit_breaker_overflows_total).
            "overflows": self.overflows(),
            "endpoints": rows,
        }
