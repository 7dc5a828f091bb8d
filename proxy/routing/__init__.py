"""Pure request routing: which service, which route, which destination.

Everything here reads a validated ``MeshConfig`` and indexes built once from it; no
I/O, no clock, and randomness only from the ``random.Random`` the caller passes in.
"""

from __future__ import annotations

from proxy.routing.index import ServiceIndex
from proxy.routing.match import match_route
from proxy.routing.pick import pick_destination
from proxy.routing.request import RequestInfo

__all__ = [
    "RequestInfo",
    "ServiceIndex",
    "match_route",
    "pick_destination",
]
