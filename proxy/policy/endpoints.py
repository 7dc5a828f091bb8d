"""The endpoint table of one service: membership, per-endpoint load state, picking.

The table owns each endpoint's in-flight count and latency estimate; a pluggable
algorithm (``proxy.policy.balancer``) chooses among the ready ones. ``start`` and
``finish`` bracket every attempt so load and latency stay exact. Endpoints removed
while requests are in flight are *draining*: never picked again, forgotten once
their last attempt finishes.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence, Set
from dataclasses import dataclass
from random import Random
from typing import Generic, TypeVar

from proxy.policy.balancer import DEFAULT_BALANCER, RoundRobinBalancer, make_balancer
from proxy.policy.errors import AccountingError, InvalidParameter
from proxy.policy.ewma import DEFAULT_DECAY, DEFAULT_RTT, PeakEwma
from proxy.policy.values import Attempt as Attempt
from proxy.policy.values import EndpointStats as EndpointStats

E = TypeVar("E", bound=Hashable)


@dataclass(frozen=True)
class BalancerParams:
    balancer: str = DEFAULT_BALANCER
    decay: float = DEFAULT_DECAY  # seconds, peak-EWMA decay window
    initial_rtt: float = DEFAULT_RTT  # seconds, estimate of a never-measured endpoint
    # A failed attempt is recorded as at least this slow, so an endpoint that fails
    # fast does not look fast and attract traffic (linkerd2#11669).
    failure_penalty: float = 1.0

    def __post_init__(self) -> None:
        make_balancer(self.balancer)  # raises on an unknown name
        for field in ("decay", "initial_rtt", "failure_penalty"):
            value = getattr(self, field)
            if not value > 0:
                raise InvalidParameter(f"{field}: must be > 0, got {value!r}")


class EndpointState(Generic[E]):
    __slots__ = ("endpoint", "ewma", "in_flight", "weight")

    def __init__(self, endpoint: E, weight: float, ewma: PeakEwma) -> None:
        self.endpoint = endpoint
        self.weight = weight
        self.ewma = ewma
        self.in_flight = 0


def _check_weight(endpoint: Hashable, weight: float) -> float:
    if not weight > 0:
        raise InvalidParameter(f"endpoint {endpoint!r}: weight must be > 0, got {weight!r}")
    return float(weight)


class EndpointTable(Generic[E]):
    def __init__(self, params: BalancerParams | None = None) -> None:
        self.params = params or BalancerParams()
        self._balancer = make_balancer(self.params.balancer)
        # For picks nothing is learnt from (``blind``): a balancer that needs latency
        # or load fed back would see neither, so those picks go round robin.
        self._blind = RoundRobinBalancer() if self._balancer.learns else self._balancer
        self._active: dict[E, EndpointState[E]] = {}
        self._draining: dict[E, EndpointState[E]] = {}
        # ``_active``'s states in its order, kept with membership: a pick that leaves
        # nothing out (most of them) reads this instead of building a list.
        self._ready: tuple[EndpointState[E], ...] = ()

    # -- membership ---------------------------------------------------------------

    def set_endpoints(self, endpoints: Mapping[E, float] | Iterable[E], now: float) -> None:
        """Replace the membership (endpoint -> weight, or weight 1); survivors keep state."""
        weights = (
            dict(endpoints) if isinstance(endpoints, Mapping) else dict.fromkeys(endpoints, 1.0)
        )
        for endpoint, weight in weights.items():
            _check_weight(endpoint, weight)  # all or nothing: validate before changing
        for endpoint in [e for e in self._active if e not in weights]:
            self._remove(endpoint)
        for endpoint, weight in weights.items():
            self._add(endpoint, now, weight)
        self._ready = tuple(self._active.values())  # once, not per endpoint

    def add(self, endpoint: E, now: float, weight: float = 1.0) -> None:
        """Add an endpoint (or update its weight); a draining one comes back with its state."""
        self._add(endpoint, now, weight)
        self._ready = tuple(self._active.values())

    def remove(self, endpoint: E) -> None:
        """Stop picking an endpoint; it is forgotten once its in-flight attempts finish."""
        self._remove(endpoint)
        self._ready = tuple(self._active.values())

    def _add(self, endpoint: E, now: float, weight: float) -> None:
        weight = _check_weight(endpoint, weight)
        state = self._active.get(endpoint) or self._draining.pop(endpoint, None)
        if state is None:
            p = self.params
            state = EndpointState(endpoint, weight, PeakEwma(now, p.initial_rtt, p.decay))
        state.weight = weight
        self._active[endpoint] = state

    def _remove(self, endpoint: E) -> None:
        state = self._active.pop(endpoint, None)
        if state is None:
            return
        self._balancer.forget(endpoint)
        self._blind.forget(endpoint)
        if state.in_flight > 0:
            self._draining[endpoint] = state

    # -- per request --------------------------------------------------------------

    def pick(
        self,
        rng: Random,
        now: float,
        exclude: Set[E] = frozenset(),
        among: Set[E] | None = None,
        blind: bool = False,
    ) -> E | None:
        """Choose an endpoint not in ``exclude`` (already tried) and, if given, in
        ``among`` (what outlier detection lets through); None when nothing qualifies.
        ``blind``: no attempt will be started or finished for this pick."""
        if among is None and not exclude:
            ready: Sequence[EndpointState[E]] = self._ready
        else:
            ready = [
                s
                for e, s in self._active.items()
                if e not in exclude and (among is None or e in among)
            ]
        if not ready:
            return None
        return (self._blind if blind else self._balancer).choose(ready, rng, now).endpoint

    def take(self, rng: Random, now: float, exclude: Set[E] = frozenset()) -> Attempt[E] | None:
        """``pick`` then ``start`` in one call (the once-per-attempt path); None when
        nothing qualifies."""
        ready: Sequence[EndpointState[E]] = (
            [s for e, s in self._active.items() if e not in exclude] if exclude else self._ready
        )
        if not ready:
            return None
        state = self._balancer.choose(ready, rng, now)
        state.in_flight += 1
        return Attempt(state.endpoint, now)

    def start(self, endpoint: E, now: float) -> Attempt[E]:
        """Count an attempt as in flight to ``endpoint`` (picked by ``pick``)."""
        state = self._active.get(endpoint)
        if state is None:
            raise AccountingError(f"start: {endpoint!r} is not an active endpoint of this table")
        state.in_flight += 1
        return Attempt(endpoint, now)

    def finish(
        self,
        attempt: Attempt[E],
        now: float,
        latency: float | None,
        ok: bool,
        measured: bool = True,
    ) -> None:
        """End an attempt. ``latency`` is the time to the first response byte (None: use
        ``now - started_at``); a failed attempt counts as at least ``failure_penalty``.
        ``measured=False`` only ends the attempt: it says nothing about latency."""
        endpoint = attempt.endpoint
        state = self._active.get(endpoint) or self._draining.get(endpoint)
        if state is None or state.in_flight == 0:
            raise AccountingError(f"finish: no attempt in flight to {endpoint!r}")
        state.in_flight -= 1
        if measured:
            sample = max(0.0, now - attempt.started_at) if latency is None else max(0.0, latency)
            if not ok:
                sample = max(sample, self.params.failure_penalty)
            state.ewma.observe(now, sample)
        if state.in_flight == 0 and endpoint in self._draining:
            del self._draining[endpoint]

    # -- reporting ----------------------------------------------------------------

    def stats(self, now: float) -> list[EndpointStats[E]]:
        """Every endpoint (active, then draining) without disturbing the estimates."""
        rows = [(s, False) for s in self._active.values()]
        rows += [(s, True) for s in self._draining.values()]
        return [
            EndpointStats(s.endpoint, s.weight, s.in_flight, s.ewma.peek(now) * 1000.0, draining)
            for s, draining in rows
        ]
