"""Outlier detection: eject an endpoint that keeps failing, readmit it through one probe.

States and transitions (one record per endpoint; ``now`` is passed in, so timers are
just comparisons):

    HEALTHY  --error, consecutive >= consecutive_errors, cap allows-->  EJECTED
    HEALTHY  --success-->                       HEALTHY (consecutive count reset)
    EJECTED  --now >= ejected_until-->          PROBING (checked lazily on every call)
    PROBING  --probe succeeds-->                HEALTHY (count reset)
    PROBING  --probe fails-->                   EJECTED (longer: base x times ejected)

An ejection lasts ``base_ejection_time x times_ejected``, capped at
``max_ejection_time``; ``times_ejected`` drops by one per ``interval`` spent healthy
(as Envoy's multiplier does). At most ``max_ejection_percent`` of the endpoints are
out at once (EJECTED or PROBING), but one always may be. A PROBING endpoint admits
exactly one request (``on_attempt`` claims the slot) until that probe reports; a probe
that never reports frees the slot after ``probe_timeout``. When fewer than
``panic_threshold`` % of the endpoints are HEALTHY, routing ignores health (panic).
Results for an endpoint that is EJECTED, or PROBING with no probe out, come from
requests sent before the ejection and are ignored.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

from proxy.policy.errors import InvalidParameter
from proxy.policy.outcome import Outcome
from proxy.policy.values import Ejection as Ejection
from proxy.policy.values import Health as Health
from proxy.policy.values import Routing as Routing

E = TypeVar("E", bound=Hashable)


@dataclass(frozen=True)
class OutlierParams:
    consecutive_errors: int = 5  # 0 disables ejection
    interval: float = 10.0  # seconds healthy that forgive one past ejection
    base_ejection_time: float = 30.0
    max_ejection_time: float = 300.0
    max_ejection_percent: float = 50.0
    panic_threshold: float = 50.0  # % healthy below which health is ignored
    probe_timeout: float = 30.0  # seconds before an unreported probe frees its slot

    def __post_init__(self) -> None:
        checks = {
            "consecutive_errors": self.consecutive_errors >= 0,
            "interval": self.interval > 0,
            "base_ejection_time": self.base_ejection_time > 0,
            "max_ejection_time": self.max_ejection_time >= self.base_ejection_time,
            "max_ejection_percent": 0 <= self.max_ejection_percent <= 100,
            "panic_threshold": 0 <= self.panic_threshold <= 100,
            "probe_timeout": self.probe_timeout > 0,
        }
        for field, ok in checks.items():
            if not ok:
                value = getattr(self, field)
                raise InvalidParameter(f"outlier_detection.{field}: invalid value {value!r}")


_HEALTHY: Final = Health.HEALTHY  # a module global: one dictionary lookup where it is compared


class _Record:
    __slots__ = ("consecutive", "health", "healthy_since", "probe_sent_at", "times", "until")

    def __init__(self, now: float) -> None:
        self.health = Health.HEALTHY
        self.consecutive = 0  # consecutive errors while HEALTHY
        self.times = 0  # ejections so far (forgiven over time while healthy)
        self.until = 0.0  # end of the current ejection
        self.healthy_since = now
        self.probe_sent_at: float | None = None


class OutlierDetector(Generic[E]):
    def __init__(self, params: OutlierParams | None = None) -> None:
        self.params = params or OutlierParams()
        self._records: dict[E, _Record] = {}
        self.ejections_total = 0

    def set_endpoints(self, endpoints: Iterable[E], now: float) -> None:
        """Track exactly these endpoints; survivors keep their history."""
        wanted = list(endpoints)
        self._records = {e: self._records.get(e) or _Record(now) for e in wanted}

    def __contains__(self, endpoint: object) -> bool:
        return endpoint in self._records

    def health(self, endpoint: E, now: float) -> Health:
        return self._advance(self._record(endpoint), now).health

    def ejected_until(self, endpoint: E) -> float | None:
        record = self._record(endpoint)
        return record.until if record.health is Health.EJECTED else None

    def routing(self, now: float) -> Routing[E]:
        """The endpoints the balancer may pick from right now."""
        for record in self._records.values():
            self._advance(record, now)
        healthy = [e for e, r in self._records.items() if r.health is Health.HEALTHY]
        if len(healthy) < self.params.panic_threshold / 100.0 * len(self._records):
            return Routing(frozenset(self._records), panic=True)
        probes = [e for e, r in self._records.items() if self._probe_open(r, now)]
        return Routing(frozenset(healthy + probes), panic=False)

    def counting(self, endpoint: E, now: float) -> bool:
        """Would errors at ``endpoint`` lead to its ejection? Detection is on, and the
        endpoint is out already (a failed probe re-ejects it) or the cap leaves room."""
        record = self._records.get(endpoint)
        if record is None or self.params.consecutive_errors == 0:
            return False
        return self._advance(record, now).health is not Health.HEALTHY or (
            self._may_eject_another()
        )

    def on_attempt(self, endpoint: E, now: float) -> bool:
        """An attempt is being sent to ``endpoint``; True if it is that endpoint's probe."""
        record = self._records.get(endpoint)
        if record is None or not self._probe_open(self._advance(record, now), now):
            return False
        record.probe_sent_at = now
        return True

    def record(self, endpoint: E, outcome: Outcome, now: float) -> Ejection[E] | None:
        """Feed an attempt's outcome; returns the ejection it caused, if any."""
        record = self._records.get(endpoint)
        if record is None:
            return None  # removed meanwhile
        health = record.health
        if health is _HEALTHY and not outcome.is_error:
            record.consecutive = 0  # the common case, ahead of the rest: once per attempt
            return None
        self._advance(record, now)
        if record.health is Health.EJECTED:
            return None
        if record.health is Health.PROBING:
            if record.probe_sent_at is None:
                return None
            record.probe_sent_at = None
            if outcome.is_error:
                return self._eject(endpoint, record, now)
            record.health, record.consecutive, record.healthy_since = Health.HEALTHY, 0, now
            return None
        if not outcome.is_error:
            record.consecutive = 0
            return None
        record.consecutive += 1
        threshold = self.params.consecutive_errors
        if threshold == 0 or record.consecutive < threshold:
            return None
        if not self._may_eject_another():
            return None
        # Forgive one past ejection per interval spent healthy.
        healthy_for = now - record.healthy_since
        record.times = max(0, record.times - math.floor(healthy_for / self.params.interval))
        return self._eject(endpoint, record, now)

    # -- internals ------------------------------------------------------------------

    def _record(self, endpoint: E) -> _Record:
        try:
            return self._records[endpoint]
        except KeyError:
            raise InvalidParameter(f"unknown endpoint {endpoint!r}") from None

    def _advance(self, record: _Record, now: float) -> _Record:
        if record.health is Health.EJECTED and now >= record.until:
            record.health, record.probe_sent_at = Health.PROBING, None
        return record

    def _probe_open(self, record: _Record, now: float) -> bool:
        if record.health is not Health.PROBING:
            return False
        sent = record.probe_sent_at
        return sent is None or now - sent >= self.params.probe_timeout

    def _may_eject_another(self) -> bool:
        p = self.params
        if p.max_ejection_percent == 0:
            return False
        out = sum(1 for r in self._records.values() if r.health is not Health.HEALTHY)
        allowed = max(1, math.floor(len(self._records) * p.max_ejection_percent / 100.0))
        return out < allowed

    def _eject(self, endpoint: E, record: _Record, now: float) -> Ejection[E]:
        p = self.params
        record.times += 1
        record.until = now + min(p.base_ejection_time * record.times, p.max_ejection_time)
        record.health, record.consecutive, record.probe_sent_at = Health.EJECTED, 0, None
        self.ejections_total += 1
        return Ejection(endpoint, now, record.until, record.times)
