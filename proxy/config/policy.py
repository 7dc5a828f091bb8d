"""Resilience policy: the resolved model, its built-in defaults, and overrides.

A resolved ``Policy`` has every field set. Each level of the document (``defaults``,
a service's ``policy``, a route's ``policy``) is a ``PolicyOverride``: only the
fields that level wrote, keyed by dotted path (``retries.budget.ratio``). Merging
applies overrides field by field, so a route that sets ``retries.attempts`` keeps
the service's ``retry_on``. Defaults are Envoy's and Istio's (docs/REFERENCE.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

# Load balancers are chosen by name; the balancing code maps each name to its class.
LOAD_BALANCERS = ("peak_ewma", "round_robin", "least_request", "random")
RETRY_CONDITIONS = (
    "connect-failure",  # TCP connect failed or timed out
    "refused",  # the endpoint refused the connection (RST on SYN)
    "reset",  # the connection was reset or closed before a response
    "5xx",  # any 5xx response, or no response at all
    "gateway-error",  # 502, 503, 504
    "timeout",  # the per-try timeout fired
    "per-try-timeout",  # alias of timeout
    "refused-stream",  # HTTP/2 REFUSED_STREAM; on HTTP/1 the same as refused
)
# Must stay the set proxy.policy.retry.parse_retry_on accepts (a test checks it).


@dataclass(frozen=True)
class RetryBudgetSettings:
    """Retries may add ``ratio`` of the request rate, plus ``min_per_second``, over ``window``."""

    ratio: float = 0.2
    min_per_second: int = 10
    window: float = 10.0


@dataclass(frozen=True)
class Backoff:
    """Wait before retry N: random in [0, min(max, base * (2^N - 1))) seconds."""

    base: float = 0.025
    max: float = 0.25


@dataclass(frozen=True)
class Retries:
    attempts: int = 2  # retries after the first try (Istio's ``attempts``); 0 = none
    per_try_timeout: float = 0.0  # seconds; 0 = each try may use the whole timeout
    # DESIGN.md §5: Istio's mesh default minus the gRPC-only conditions.
    retry_on: tuple[str, ...] = ("connect-failure", "reset", "refused", "503")
    budget: RetryBudgetSettings = field(default_factory=RetryBudgetSettings)
    backoff: Backoff = field(default_factory=Backoff)

    @property
    def status_codes(self) -> frozenset[int]:
        """The response codes listed in ``retry_on`` (``"503"`` → 503)."""
        return frozenset(int(c) for c in self.retry_on if c.isdigit())


@dataclass(frozen=True)
class OutlierDetection:
    consecutive_errors: int = 5  # 0 disables ejection
    interval: float = 10.0
    base_ejection_time: float = 30.0  # times the number of ejections, capped at max_ejection_time
    max_ejection_time: float = 300.0
    max_ejection_percent: int = 50  # DESIGN.md §5 (Envoy itself defaults to 10)


@dataclass(frozen=True)
class CircuitBreaker:
    max_connections: int = 1024
    max_pending_requests: int = 1024
    max_requests: int = 1024
    max_retries: int = 3


@dataclass(frozen=True)
class Policy:
    timeout: float = 15.0  # seconds for the whole request, retries included; 0 = none
    retries: Retries = field(default_factory=Retries)
    load_balancer: str = "peak_ewma"
    outlier_detection: OutlierDetection = field(default_factory=OutlierDetection)
    circuit_breaker: CircuitBreaker = field(default_factory=CircuitBreaker)


@dataclass(frozen=True)
class PolicyOverride:
    """The policy fields one level of the document set, by dotted path."""

    values: Mapping[str, Any] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.values)

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.values.items())))

    def __json__(self) -> dict[str, Any]:
        return dict(self.values)


def merge_policy(base: Policy, *overrides: PolicyOverride) -> Policy:
    """``base`` with each override applied in turn (later overrides win)."""
    policy = base
    for override in overrides:
        for dotted, value in override.values.items():
            policy = _set(policy, dotted.split("."), value)
    return policy


def _set(obj: Any, names: list[str], value: object) -> Any:
    head, *rest = names
    if not rest:
        return replace(obj, **{head: value})
    return replace(obj, **{head: _set(getattr(obj, head), rest, value)})


# Pairs of fields that must be ordered in the merged policy: (smaller, larger).
ORDERED_FIELDS = (
    ("outlier_detection.base_ejection_time", "outlier_detection.max_ejection_time"),
    ("retries.backoff.base", "retries.backoff.max"),
)


def field_value(policy: Policy, dotted: str) -> Any:
    obj: Any = policy
    for name in dotted.split("."):
        obj = getattr(obj, name)
    return obj
