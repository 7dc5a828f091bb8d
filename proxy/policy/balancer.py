"""Load-balancing algorithms, picked by name from a registry.

Each algorithm chooses one of a non-empty list of ready endpoint states; the pool
(``proxy.policy.endpoints``) decides which endpoints are ready. Weights are honoured
everywhere: random and round robin share traffic in proportion to weight; the two
P2C algorithms draw their two distinct candidates in proportion to weight and then
take the cheaper one (the first drawn on a tie), so weight is the share when the
endpoints cost the same and load or latency wins when they do not.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from random import Random
from typing import ClassVar, Final, Protocol, TypeVar

from proxy.policy.errors import InvalidParameter
from proxy.policy.ewma import PeakEwma


class Candidate(Protocol):
    """What an algorithm may read about an endpoint (``pool.EndpointState`` provides it)."""

    @property
    def endpoint(self) -> Hashable: ...
    @property
    def weight(self) -> float: ...
    @property
    def in_flight(self) -> int: ...
    @property
    def ewma(self) -> PeakEwma: ...


C = TypeVar("C", bound=Candidate)


class Balancer(Protocol):
    @property
    def name(self) -> str:
        """The config name (a class constant in each balancer: the registry keys on it)."""

    learns: bool  # chooses by latency or load, which only finished attempts teach it

    def choose(self, ready: Sequence[C], rng: Random, now: float) -> C: ...

    def forget(self, endpoint: Hashable) -> None:
        """Drop per-endpoint memory for an endpoint that left the pool."""


def peak_ewma_cost(c: Candidate, now: float) -> float:
    """Expected wait if sent here: latency estimate x (requests already queued + this one)."""
    return c.ewma.cost_basis(now) * (c.in_flight + 1)


def draw_two(ready: Sequence[C], rng: Random) -> tuple[C, C]:
    """Two distinct candidates, each drawn with probability proportional to weight."""
    first_weight = ready[0].weight
    for c in ready:
        if c.weight != first_weight:
            break
    else:  # equal weights: a uniform ordered pair (``rng.sample(ready, 2)``, in C calls)
        n = len(ready)
        i = int(rng.random() * n)
        j = int(rng.random() * (n - 1))
        return ready[i], ready[j + 1 if j >= i else j]
    a = rng.choices(ready, weights=[c.weight for c in ready])[0]
    rest = [c for c in ready if c is not a]
    b = rng.choices(rest, weights=[c.weight for c in rest])[0]
    return a, b


class PeakEwmaBalancer:
    """P2C over peak-EWMA cost (linkerd2-proxy, Finagle): latency- and load-aware."""

    name: ClassVar[str] = "peak_ewma"
    learns = True

    def choose(self, ready: Sequence[C], rng: Random, now: float) -> C:
        if len(ready) == 1:
            return ready[0]
        a, b = draw_two(ready, rng)
        # ``peak_ewma_cost(b) < peak_ewma_cost(a)``, inline: two calls fewer per pick.
        cost_b = b.ewma.cost_basis(now) * (b.in_flight + 1)
        return b if cost_b < a.ewma.cost_basis(now) * (a.in_flight + 1) else a

    def forget(self, endpoint: Hashable) -> None:
        pass  # stateless: all state lives in the pool's endpoint states


class LeastRequestBalancer:
    """P2C on in-flight requests (Envoy LEAST_REQUEST)."""

    name: ClassVar[str] = "least_request"
    learns = True

    def choose(self, ready: Sequence[C], rng: Random, now: float) -> C:
        if len(ready) == 1:
            return ready[0]
        a, b = draw_two(ready, rng)
        return b if b.in_flight < a.in_flight else a

    def forget(self, endpoint: Hashable) -> None:
        pass


class RoundRobinBalancer:
    """Smooth weighted round robin (nginx): exact weight shares, interleaved, no bursts.

    Every pick credits each ready endpoint with its weight, takes the one with the most
    credit and charges it the total. Equal weights give a plain rotation in pool order.
    """

    name: ClassVar[str] = "round_robin"
    learns = False

    def __init__(self) -> None:
        self._credit: dict[Hashable, float] = {}

    def choose(self, ready: Sequence[C], rng: Random, now: float) -> C:
        total = 0.0
        for c in ready:
            self._credit[c.endpoint] = self._credit.get(c.endpoint, 0.0) + c.weight
            total += c.weight
        best = max(ready, key=lambda c: self._credit[c.endpoint])  # first of equals wins
        self._credit[best.endpoint] -= total
        return best

    def forget(self, endpoint: Hashable) -> None:
        self._credit.pop(endpoint, None)


class RandomBalancer:
    """Weighted random (Envoy RANDOM)."""

    name: ClassVar[str] = "random"
    learns = False

    def choose(self, ready: Sequence[C], rng: Random, now: float) -> C:
        return rng.choices(ready, weights=[c.weight for c in ready])[0]

    def forget(self, endpoint: Hashable) -> None:
        pass


BALANCERS: Final[dict[str, Callable[[], Balancer]]] = {
    PeakEwmaBalancer.name: PeakEwmaBalancer,
    LeastRequestBalancer.name: LeastRequestBalancer,
    RoundRobinBalancer.name: RoundRobinBalancer,
    RandomBalancer.name: RandomBalancer,
}
DEFAULT_BALANCER: Final = PeakEwmaBalancer.name


def make_balancer(name: str) -> Balancer:
    """A fresh balancer (some keep per-pool state) by its config name."""
    factory = BALANCERS.get(name)
    if factory is None:
        known = ", ".join(sorted(BALANCERS))
        raise InvalidParameter(f"load_balancer: unknown balancer {name!r} (known: {known})")
    return factory()
