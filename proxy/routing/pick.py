"""After a route is chosen: its destination, that destination's endpoints, the policy.

The weighted pick is one ``randrange`` over the summed weights and a bisect over the
running sums the route computed at load. Subset membership and merged policies were
also resolved at load; these functions only look them up.
"""

from __future__ import annotations

import random

from proxy.config.model import Destination, Endpoint, MeshConfig, Route, Service
from proxy.config.policy import Policy


class UnknownSubsetError(LookupError):
    """A subset name the service does not define (a validated config never asks for one)."""


def pick_destination(route: Route, rng: random.Random) -> Destination:
    """A destination drawn with probability weight / total weight."""
    if len(route.destinations) == 1:
        return route.destinations[0]
    total = route.cumulative_weights[-1] if route.cumulative_weights else 0
    if total <= 0:
        raise ValueError(f"route {route.name or '(unnamed)'} has no destination with weight > 0")
    return route.destination_at(rng.randrange(total))


def subset_endpoints(service: Service, subset: str | None) -> tuple[Endpoint, ...]:
    """The static endpoints a subset selects; ``None`` means all of the service's."""
    if subset is None:
        return service.endpoints
    try:
        return service.subset_members[subset]
    except KeyError:
        raise UnknownSubsetError(f"service {service.name!r} has no subset {subset!r}") from None


def effective_policy(config: MeshConfig, service: Service | None, route: Route | None) -> Policy:
    """The policy in force: route > service > ``defaults`` > built-in, merged at load.

    Without a service (passthrough traffic) the mesh ``defaults`` apply.
    """
    if service is None:
        return config.defaults
    if route is None:
        return service.resolved_policy
    return route.resolved_policy
