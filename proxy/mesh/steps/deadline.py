"""The first step: a request whose deadline is already spent is not sent at all.

A caller's ``x-mesh-timeout-ms: 0`` (or a ``grpc-timeout`` that ran out on the way)
gets 504 ``DL`` at once, as Envoy answers an expired ``x-envoy-expected-rq-timeout-ms``.
"""

from __future__ import annotations

from random import Random
from typing import TYPE_CHECKING, Final

from proxy.core.flags import Flag
from proxy.http.model import LocalReply, RequestHead

if TYPE_CHECKING:
    from proxy.mesh.dispatch import RequestState

EXPIRED: Final = LocalReply(504, Flag.DEADLINE_EXCEEDED)


def expired_on_arrival(state: RequestState, head: RequestHead, now: float, rng: Random) -> None:
    if state.deadline.expired(now):
        state.reply = EXPIRED
