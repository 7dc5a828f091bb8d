"""Peak-EWMA latency estimator (Finagle / linkerd2-proxy): pessimistic, then forgiving.

A sample above the estimate replaces it at once (peak), so a slowing endpoint is
penalised immediately; a lower sample is blended in with weight ``1 - w`` where
``w = e^(-dt/decay)`` and ``dt`` is the time since the estimate last changed. Reading
the estimate decays it toward zero the same way, so an endpoint nobody picks slowly
becomes attractive again and gets a fresh sample (the built-in recovery probe).
"""

from __future__ import annotations

import math
from typing import Final

DEFAULT_DECAY: Final = 10.0  # seconds (linkerd2-proxy, Finagle)
DEFAULT_RTT: Final = 0.030  # seconds: what a never-measured endpoint is assumed to cost
MIN_RTT: Final = 0.001  # seconds: floor used in cost, so a decayed estimate never reaches 0


class PeakEwma:
    """One endpoint's latency estimate, in seconds, as of time ``updated_at``."""

    __slots__ = ("decay", "estimate", "updated_at")

    def __init__(self, now: float, initial: float = DEFAULT_RTT, decay: float = DEFAULT_DECAY):
        self.estimate = initial
        self.updated_at = now
        self.decay = decay

    def observe(self, now: float, rtt: float) -> float:
        """Fold in one latency sample taken at ``now``; returns the new estimate."""
        estimate = self.estimate
        if rtt > estimate:
            self.estimate = estimate = rtt  # peak: trust the worst recent sample
        else:
            # ``_weight``, inline (once per attempt): no time elapsed (or a clock
            # behind) is weight 1, exactly what exp(-0.0) gives.
            elapsed = now - self.updated_at
            w = math.exp(-elapsed / self.decay) if elapsed > 0.0 else 1.0
            self.estimate = estimate = estimate * w + rtt * (1.0 - w)
        if now > self.updated_at:  # ``max(updated_at, now)``
            self.updated_at = now
        return estimate

    def read(self, now: float) -> float:
        """The estimate decayed to ``now`` (a zero-latency blend), stored as the new state."""
        self.estimate *= self._weight(now)
        self.updated_at = max(self.updated_at, now)
        return self.estimate

    def peek(self, now: float) -> float:
        """The decayed estimate without storing it (for reports that must not disturb it)."""
        return self.estimate * self._weight(now)

    def cost_basis(self, now: float) -> float:
        """The decayed estimate floored at ``MIN_RTT``: the latency factor of a P2C cost.

        ``read`` then the floor, in one call: P2C asks this twice per pick.
        """
        elapsed = now - self.updated_at
        if elapsed > 0.0:  # as ``read``: no time elapsed (or a clock behind) decays nothing
            self.estimate *= math.exp(-elapsed / self.decay)
            self.updated_at = now
        estimate = self.estimate
        return estimate if estimate > MIN_RTT else MIN_RTT

    def _weight(self, now: float) -> float:
        # A clock that appears to run backwards (samples reported out of order) must
        # not inflate the estimate: treat it as no time elapsed.
        elapsed = max(0.0, now - self.updated_at)
        return math.exp(-elapsed / self.decay)
