"""The config in force kept out of the cyclic collector's way (``gc.freeze``).

A mesh of 10,000 services is about a million objects that the collector tracks.
Pausing it while they are built (``proxy.reload.gcpause``) only moves the bill: once
it runs again, the new objects climb the generations and it traverses all of them,
holding the interpreter lock, in one pass of the middle generation and two full ones.
Measured here (``python -m scripts.benchlib.reloadpause``): about 1.3 s of stalls on
the event loop after each such swap, the longest 0.45 s.

So once a config is in force (and at start, before any traffic) what is alive is
moved to the permanent generation, which no collection visits. Memory is still
freed by reference counting, which is how an old config goes: nothing a build makes
is cyclic. What is frozen and cyclic can no longer be collected, though: a
connection's objects that were alive at a swap and later became a cycle. So the
frozen count is watched: when it has grown past ``GROWTH`` times its size after the
last full collection, everything is unfrozen, collected once and frozen again. The
pause that costs is the one the freezing avoids, now paid only when at least that
much garbage may have piled up.

``Settler`` is that policy with the collector passed in (pure, tested with a fake);
``settle`` is it on the real ``gc`` module, one per process.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

GROWTH = 1.5  # frozen objects past this multiple of the last clean count: reclaim


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
    def __init__(self, collector: Collector = REAL, growth: float = GROWTH) -> None:
        if growth <= 1.0:
            raise ValueError(f"gc freeze growth {growth} must be more than 1")
        self.collector = collector
        self.growth = growth
        self.clean: int | None = None  # frozen count right after the last full collection
        self.settles = 0
        self.reclaims = 0  # full collections made because the frozen set had grown

    def settle(self) -> None:
        """Freeze what is alive now; collect everything first when due (see module)."""
        c = self.collector
        self.settles += 1
        if self.clean is not None:
            c.freeze()
            now = c.frozen()
            if now <= self.clean * self.growth:
                # A smaller config in force lowers the bar too: garbage is judged
                # against what is needed now, not against a bigger past.
                self.clean = min(self.clean, now)
                return
            self.reclaims += 1
        c.unfreeze()
        c.collect()
        c.freeze()
        self.clean = c.frozen()

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
