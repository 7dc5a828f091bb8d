"""Per-request steps: what happens to a routed request between its route and its attempts.

A step is one small module exposing a ``Step``: a callable given the request's
``RequestState``, its head, the time and the dispatcher's random source. It may
answer the request itself (set ``state.reply``), hold it first (add to
``state.delay``: the attempts, or the reply, wait that long) and name what happened
in the record (``state.flag``, kept when the request otherwise succeeds). Steps run
in order, and the first reply ends the run.

The order is DESIGN.md §5's: arrival checks, authorization, filters, rate limit,
fault, then the attempts. ``steps_for`` builds a route's list once, when a config is
applied, so a route pays only for the steps it configures.
"""

from __future__ import annotations

from proxy.config.model import Route
from proxy.mesh.steps.base import Step
from proxy.mesh.steps.deadline import expired_on_arrival
from proxy.mesh.steps.fault import FaultStep

# Requests with no route (passthrough, inbound to the local app) get these.
DIRECT: tuple[Step, ...] = (expired_on_arrival,)


def steps_for(route: Route) -> tuple[Step, ...]:
    """The steps of one route, in DESIGN.md §5's order."""
    steps: list[Step] = [expired_on_arrival]
    if route.fault is not None:
        steps.append(FaultStep(route.fault))
    return tuple(steps)


def after_arrival(steps: tuple[Step, ...]) -> tuple[Step, ...] | None:
    """The steps after the arrival check when it comes first (the dispatcher makes that
    check inline, it just computed the deadline); None when it does not come first."""
    if steps and steps[0] is expired_on_arrival:
        return steps[1:]
    return None


__all__ = ["DIRECT", "Step", "after_arrival", "steps_for"]
