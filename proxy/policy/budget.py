"""Retry budget (Finagle, Linkerd/tower): retries may add at most ``ratio`` of the
traffic, plus a floor of ``min_per_second`` so a quiet service can still retry.

Every request deposits ``ratio`` of a token and every retry withdraws one whole
token; deposits and withdrawals live in ``slots`` time slots spanning ``window``
seconds and expire with their slot. The balance is the unexpired sum plus a fixed
reserve of ``min_per_second x window`` tokens. Tokens are counted in thousandths so
the arithmetic is exact.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Final

from proxy.policy.errors import InvalidParameter

_UNIT: Final = 1000  # one retry token, in integer milli-tokens


@dataclass(frozen=True)
class BudgetParams:
    ratio: float = 0.2  # retries allowed per request
    min_per_second: float = 10.0  # retries always allowed per second of window
    window: float = 10.0  # seconds a deposit or withdrawal counts for
    slots: int = 10  # time slots the window is cut into (its expiry granularity)

    def __post_init__(self) -> None:
        if not 0 <= self.ratio <= 1000:
            raise InvalidParameter(f"budget.ratio: must be in 0..1000, got {self.ratio!r}")
        if not self.min_per_second >= 0:
            raise InvalidParameter(
                f"budget.min_per_second: must be >= 0, got {self.min_per_second!r}"
            )
        if not self.window > 0:
            raise InvalidParameter(f"budget.window: must be > 0, got {self.window!r}")
        if self.slots < 1:
            raise InvalidParameter(f"budget.slots: must be >= 1, got {self.slots!r}")


class RetryBudget:
    def __init__(self, params: BudgetParams | None = None) -> None:
        self.params = params or BudgetParams()
        p = self.params
        self._deposit = round(p.ratio * _UNIT)
        self._reserve = math.floor(p.min_per_second * p.window * _UNIT)
        self._slot_length = p.window / p.slots
        self._slots: deque[list[int]] = deque()  # [slot index, milli-token balance]

    def deposit(self, now: float) -> None:
        """Credit one request (call once per request, not per attempt)."""
        slots = self._slots
        if slots and slots[-1][0] >= math.floor(now / self._slot_length):
            # ``_current`` without ``_expire``: the newest slot is this one (or newer),
            # and when it was made the expiry ran for its index, which covers ``now``'s.
            slots[-1][1] += self._deposit
            return
        self._current(now)[1] += self._deposit

    def try_withdraw(self, now: float) -> bool:
        """Spend one retry if the budget allows it."""
        if self._balance(now) < _UNIT:
            return False
        self._current(now)[1] -= _UNIT
        return True

    def available(self, now: float) -> int:
        """How many retries the budget would allow right now."""
        return max(0, self._balance(now)) // _UNIT

    def _balance(self, now: float) -> int:
        self._expire(now)
        return self._reserve + sum(balance for _, balance in self._slots)

    def _current(self, now: float) -> list[int]:
        self._expire(now)
        index = math.floor(now / self._slot_length)
        if not self._slots or self._slots[-1][0] < index:
            self._slots.append([index, 0])
        # A ``now`` older than the newest slot (out-of-order caller) lands in the newest.
        return self._slots[-1]

    def _expire(self, now: float) -> None:
        oldest_live = math.floor(now / self._slot_length) - self.params.slots + 1
        while self._slots and self._slots[0][0] < oldest_live:
            self._slots.popleft()
