"""Fault injection (Istio ``fault``, Envoy's fault filter): delay or abort a share of
a route's requests, to test how callers cope.

Delay and abort are drawn independently, each with its own ``percent``. A delayed
request carries ``DI`` in its record unless something else went wrong; an aborted
one is answered with the configured status and ``FI``, after its delay if it drew
both (Envoy's order).
"""

from __future__ import annotations

from random import Random
from typing import TYPE_CHECKING

from proxy.config.model import Fault
from proxy.core.flags import Flag
from proxy.http.model import LocalReply, RequestHead

if TYPE_CHECKING:
    from proxy.mesh.dispatch import RequestState


class FaultStep:
    __slots__ = ("abort", "abort_share", "delay", "delay_share")

    def __init__(self, fault: Fault) -> None:
        delay, abort = fault.delay, fault.abort
        self.delay = delay.fixed if delay else 0.0
        self.delay_share = delay.percent / 100.0 if delay else 0.0
        self.abort = LocalReply(abort.http_status, Flag.FAULT_INJECTED) if abort else None
        self.abort_share = abort.percent / 100.0 if abort else 0.0

    def __call__(self, state: RequestState, head: RequestHead, now: float, rng: Random) -> None:
        # ``random() < share``: 0 % never fires, 100 % always does.
        if self.delay_share and rng.random() < self.delay_share:
            state.delay += self.delay
            state.flag = Flag.DELAY_INJECTED
        if self.abort_share and rng.random() < self.abort_share:
            state.reply = self.abort
