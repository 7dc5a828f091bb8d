"""What a per-request step is given and may change (see ``proxy.mesh.steps``)."""

from __future__ import annotations

from random import Random
from typing import TYPE_CHECKING, Protocol

from proxy.http.model import RequestHead

if TYPE_CHECKING:
    from proxy.mesh.dispatch import RequestState


class Step(Protocol):
    def __call__(self, state: RequestState, head: RequestHead, now: float, rng: Random) -> None:
        """Look at the request; set ``state.reply``, ``state.delay`` or ``state.flag``."""
