"""Timers that move with every request without a new loop timer each time.

A keep-alive connection re-arms its timeouts for every request. Rather than create and
cancel a timer per request, a ``MovableTimer`` keeps at most one pending timer and checks
when it fires: if the due time moved later it sleeps again until then, if it was
cleared it does nothing. Only moving it earlier costs a new timer. (Not to be confused
with ``proxy.policy.deadline.Deadline``, a request's time budget.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Final

_SLACK: Final = 0.001  # loop timers may fire up to a tick early; within this, it is due


class MovableTimer:
    __slots__ = ("_callback", "_deadline", "_handle", "_loop", "_when")

    def __init__(self, loop: asyncio.AbstractEventLoop, callback: Callable[[], object]) -> None:
        self._loop = loop
        self._callback = callback
        self._deadline: float | None = None  # when the callback is due, None: never
        self._handle: asyncio.TimerHandle | None = None
        self._when = 0.0  # when the pending timer fires

    def set_in(self, delay: float) -> None:
        """Run the callback ``delay`` seconds from now unless cleared or moved first."""
        when = self._loop.time() + delay
        self._deadline = when
        if self._handle is None or when < self._when:
            if self._handle is not None:
                self._handle.cancel()
            self._when = when
            self._handle = self._loop.call_at(when, self._fire)

    def clear(self) -> None:
        self._deadline = None  # a pending timer stays and finds nothing due

    def cancel(self) -> None:
        """Stop for good: the owner is closed (and must not be kept alive by the timer)."""
        self._deadline = None
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _fire(self) -> None:
        self._handle = None
        when = self._deadline
        if when is None:
            return
        if self._loop.time() + _SLACK < when:
            self._when = when
            self._handle = self._loop.call_at(when, self._fire)
            return
        self._deadline = None
        self._callback()
