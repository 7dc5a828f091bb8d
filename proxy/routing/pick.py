"""After a route is chosen: its destination, drawn by weight.

The weighted pick is one ``randrange`` over the summed weights and a bisect over the
running sums the route computed at load. The policy in force is the route's
``resolved_policy``, merged at load (route > service > ``defaults`` > built-in).
"""

from __future__ import annotations

import random

from proxy.config.model import Destination, Route


def pick_destination(route: Route, rng: random.Random) -> Destination:
    """A destination drawn with probability weight / total weight."""
    if len(route.destinations) == 1:
        return route.destinations[0]
    total = route.cumulative_weights[-1] if route.cumulative_weights else 0
    if total <= 0:
        raise ValueError(f"route {route.name or '(unnamed)'} has no destination with weight > 0")
    return route.destination_at(rng.randrange(total))
