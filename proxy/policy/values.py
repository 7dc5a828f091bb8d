"""The policy's generic values: what a pick, an ejection or a report hands out.

They live apart from the code that makes them because that code is compiled
(``proxy.compiled``) and this mypyc cannot build a dataclass that is also ``Generic``;
their home modules re-export them, so callers import them from there as before.
Not frozen where one is made per attempt: a frozen dataclass sets each field through
``object.__setattr__``, about twice the cost of building it.
"""

from __future__ import annotations

from collections.abc import Hashable, Set
from dataclasses import dataclass
from enum import Enum
from typing import Generic, TypeVar

E = TypeVar("E", bound=Hashable)


@dataclass(slots=True)
class Attempt(Generic[E]):
    """The handle ``EndpointTable.start`` returns; hand it back to ``finish`` once."""

    endpoint: E
    started_at: float
    # Set by ``ServicePolicy.choose`` (whose ``Choice`` this is) when outlier detection
    # had a say: the attempt is an ejected endpoint's single probe; too few endpoints
    # were healthy, so health was ignored for the pick (panic).
    probe: bool = False
    panic: bool = False


@dataclass(frozen=True)
class EndpointStats(Generic[E]):
    """One endpoint as the admin ``/clusters`` page shows it."""

    endpoint: E
    weight: float
    in_flight: int
    ewma_ms: float
    draining: bool


class Health(Enum):
    HEALTHY = "healthy"
    EJECTED = "ejected"
    PROBING = "probing"


@dataclass(frozen=True)
class Routing(Generic[E]):
    """Which endpoints may take the next request; ``panic`` means health was ignored."""

    endpoints: frozenset[E]
    panic: bool


@dataclass(frozen=True)
class Ejection(Generic[E]):
    """An ejection event (for metrics and logs)."""

    endpoint: E
    at: float
    until: float
    times_ejected: int


@dataclass(frozen=True)
class EndpointReport(Generic[E]):
    """One row of the admin ``/clusters`` page."""

    endpoint: E
    health: Health | None  # None while draining (removed, requests still in flight)
    ejected_until: float | None
    ewma_ms: float
    in_flight: int
    weight: float


@dataclass(slots=True)
class Send(Generic[E]):  # made per attempt: not frozen
    """Start attempt ``number``: pick outside ``exclude``, give it ``timeout`` seconds."""

    number: int  # 1-based: the ``x-mesh-attempt`` value
    exclude: Set[E]
    timeout: float  # 0: none
    ask: bool  # pass the response status to ``head`` before the client sees it
