"""One service's policy state kept in step: endpoint table, outlier detector, breakers, budget.

This is the one endpoint picker, for HTTP and TCP alike. An HTTP attempt needs two
calls: ``choose`` (health-filtered pick that also claims a probe slot and counts the
attempt in flight) and ``report`` (feeds the outcome to the balancer and to outlier
detection alike). A TCP connection reports nothing back, so it uses ``pick``. Keeping
them together means the table and the detector can never disagree about membership,
and lets the picker skip the health filter while nothing is ejected.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Set
from dataclasses import dataclass, field
from random import Random
from typing import Generic, TypeVar

from proxy.policy.breaker import BreakerLimits
from proxy.policy.breaker_counts import CircuitBreakers
from proxy.policy.budget import BudgetParams, RetryBudget
from proxy.policy.endpoints import Attempt, BalancerParams, EndpointTable
from proxy.policy.outcome import Outcome
from proxy.policy.outlier import Ejection, Health, OutlierDetector, OutlierParams
from proxy.policy.retry import RetryParams
from proxy.policy.values import EndpointReport as EndpointReport

E = TypeVar("E", bound=Hashable)


@dataclass(frozen=True)
class ServiceParams:
    balancing: BalancerParams = field(default_factory=BalancerParams)
    outlier: OutlierParams = field(default_factory=OutlierParams)
    breakers: BreakerLimits = field(default_factory=BreakerLimits)
    budget: BudgetParams = field(default_factory=BudgetParams)
    retry: RetryParams = field(default_factory=RetryParams)


# What ``choose`` returns: the table's ``Attempt``, its ``probe`` and ``panic`` set when
# outlier detection had a say. One object per attempt, not an attempt and a wrapper.
Choice = Attempt


class ServicePolicy(Generic[E]):
    def __init__(self, params: ServiceParams | None = None) -> None:
        self.params = params or ServiceParams()
        self.table: EndpointTable[E] = EndpointTable(self.params.balancing)
        self.detector: OutlierDetector[E] = OutlierDetector(self.params.outlier)
        self.breakers = CircuitBreakers(self.params.breakers)
        self.budget = RetryBudget(self.params.budget)
        # Endpoints ejected at some point and maybe still out. Only ``report`` ejects,
        # so while this is empty every endpoint is healthy and picks skip the filter.
        self._unhealthy: set[E] = set()

    def set_endpoints(self, endpoints: Mapping[E, float] | Iterable[E], now: float) -> None:
        """Replace the membership (endpoint -> weight, or weight 1) in pool and detector."""
        weights = (
            dict(endpoints) if isinstance(endpoints, Mapping) else dict.fromkeys(endpoints, 1.0)
        )
        self.table.set_endpoints(weights, now)
        self.detector.set_endpoints(weights, now)

    def choose(self, rng: Random, now: float, tried: Set[E] = frozenset()) -> Choice[E] | None:
        """Pick an endpoint health allows, not in ``tried`` (or otherwise left out, as
        outside the subset), and start an attempt to it; None when there is none (503
        ``UH``)."""
        if self._unhealthy and self._any_unhealthy(now):
            routing = self.detector.routing(now)
            endpoint = self.table.pick(rng, now, tried, routing.endpoints)
            if endpoint is None:
                return None
            probe = self.detector.on_attempt(endpoint, now)
            choice = self.table.start(endpoint, now)
            choice.probe, choice.panic = probe, routing.panic
            return choice
        return self.table.take(rng, now, tried)  # all healthy: none is a probe

    def pick(self, rng: Random, now: float) -> E | None:
        """An endpoint for a connection that reports nothing back (L4): health-filtered
        like ``choose``, but no attempt is started and no probe claimed. With no
        latency or load to learn from, peak_ewma and least_request pick round robin."""
        among = self.detector.routing(now).endpoints if self._any_unhealthy(now) else None
        return self.table.pick(rng, now, among=among, blind=True)

    def report(
        self, choice: Choice[E], outcome: Outcome, now: float, latency: float | None = None
    ) -> Ejection[E] | None:
        """End the attempt; ``latency`` is time to first response byte (None: elapsed).

        A failed connect (refused, timed out) is no latency sample, and while outlier
        detection is counting towards an ejection it carries no balancer penalty
        either: the penalty would make peak-EWMA shun the endpoint after one failure,
        so the run of consecutive failures (Envoy's gateway / local-origin errors)
        would never complete and a dead endpoint would never show as ejected.
        """
        endpoint = choice.endpoint
        if outcome.never_reached_app and self.detector.counting(endpoint, now):
            self.table.finish(choice, now, latency, False, False)  # ok, measured
        else:
            self.table.finish(choice, now, latency, not outcome.is_error)  # ok
        ejection = self.detector.record(endpoint, outcome, now)
        if ejection is not None:
            self._unhealthy.add(endpoint)
        return ejection

    def end(self, choice: Choice[E], now: float) -> None:
        """End an attempt that failed for no fault of the endpoint's (our pool was
        full, the client left): its time counts as a latency sample, nothing more."""
        self.table.finish(choice, now, None, ok=True)

    def _any_unhealthy(self, now: float) -> bool:
        """Forget the endpoints in ``_unhealthy`` that are healthy again or gone."""
        if self._unhealthy:
            detector = self.detector
            self._unhealthy = {
                e
                for e in self._unhealthy
                if e in detector and detector.health(e, now) is not Health.HEALTHY
            }
        return bool(self._unhealthy)

    def clusters(self, now: float) -> list[EndpointReport[E]]:
        rows = []
        for s in self.table.stats(now):
            health = None if s.draining else self.detector.health(s.endpoint, now)
            until = None if s.draining else self.detector.ejected_until(s.endpoint)
            rows.append(EndpointReport(s.endpoint, health, until, s.ewma_ms, s.in_flight, s.weight))
        return rows
