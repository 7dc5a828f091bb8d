"""The config in force kept out of the cyclic collector's way (``gc.freeze``).

A mesh of 10,000 services is about a million objects that the collector tracks.
Pausing it while they are built (``proxy.reload.gcpause``) only moves the bill: once
it runs again, the new objects climb the generations and it traverses all of them,
holding the interpreter lock, in one pass of the middle generation and two full ones.
Measured here (``python -m scripts.benchlib.reloadpause``): 1.0 to 1.5 s of stalls on
the event loop after each such swap, the longest 0.5 to 0.7 s.

So once a config is in force (and at start, before any traffic) what is alive is
moved to the permanent generation, which no collection visits. Memory is still
freed by reference counting, which is how an old config goes: nothing a build makes
is cyclic. What is frozen and cyclic can no longer be collected, though: a
connection's objects that were alive at a swap and later became a cycle. So before
each freeze the frozen count is read. By then the old config has been freed, and
what is left is live state (clusters kept across swaps, with their endpoint tables)
and any frozen garbage. Past ``GROWTH`` times the count right after the last full
collection (``clean``), and at most once per ``RECLAIM_EVERY``, everything is
unfrozen, collected once and frozen again. A config that grows is never counted (its
objects are not frozen yet when the count is read); state that a bigger mesh keeps
is, and may cost one such collection (0.8 s for 10,000 services), after which
``clean`` includes it.

``Settler`` is that policy with the collector passed in (pure, tested with a fake);
``settle`` is it on the real ``gc`` module, one per process.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

GROWTH = 1.5  # frozen objects past this multiple of the last clean count: reclaim
RECLAIM_EVERY = 3600.0  # seconds; at most one reclaiming full collection in this time


@dataclass
class Collector:
    """What the policy asks of ``gc`` (a fake in tests)."""

    freeze: Callable[[], None]
    unfreeze: Callable[[], None]
    collect: Callable[[], int]
    frozen: Callable[[], int]
    tracked: Callable[[], int]  # objects in the generations that collections traverse


REAL = Collector(
    gc.freeze, gc.unfreeze, gc.collect, gc.get_freeze_count, lambda: len(gc.get_objects())
)


class Settler:
    def __init__(
        self,
        collector: Collector = REAL,
        growth: float = GROWTH,
        every: float = RECLAIM_EVERY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if growth <= 1.0:
            raise ValueError(f"gc freeze growth {growth} must be more than 1")
        self.collector = collector
        self.growth = growth
        self.every = every
        self.clock = clock
        self.clean: int | None = None  # None until the first settle, which collects
        self.collected_at = 0.0  # the clock at the last full collection
        self.settles = 0
        self.reclaims = 0  # full collections made because frozen garbage may have piled up

    def settle(self) -> None:
        """Freeze what is alive now; collect everything first when due (see module)."""
        c = self.collector
        self.settles += 1
        now = self.clock()
        if self.clean is not None:
            kept = c.frozen()  # the frozen survivors of earlier settles, garbage included
            if kept <= self.clean * self.growth or now - self.collected_at < self.every:
                c.freeze()
                return
            self.reclaims += 1
        c.unfreeze()
        c.collect()
        c.freeze()
        self.clean = c.frozen()
        self.collected_at = now

    def stats(self) -> dict[str, Any]:
        """For ``GET /stats``: what the collector traverses, what is frozen, and why."""
        return {
            "tracked": self.collector.tracked(),
            "frozen": self.collector.frozen(),
            "settles": self.settles,
            "reclaims": self.reclaims,
        }


_settler = Settler()


def settle() -> None:
    """This process's settler (forked workers inherit its state with the heap)."""
    _settler.settle()


def stats() -> dict[str, Any]:
    """This process's: the settler's counts and each generation's collections so far."""
    return {**_settler.stats(), "collections": [g["collections"] for g in gc.get_stats()]}
