"""Whether, and after what backoff, a failed attempt is tried again.

``decide`` walks a fixed ladder and the first rung that says no wins: success, the
outcome not listed in ``retry_on``, attempts used up, a non-idempotent method whose
request may have reached the app, a body that cannot be replayed, the deadline, and
last the retry budget (so only a retry that really happens spends a token).
Backoff is Envoy's: random in [0, (2^N - 1) x base), the bound capped at ``max``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from random import Random
from typing import Final

from proxy.policy.budget import RetryBudget
from proxy.policy.deadline import Deadline
from proxy.policy.errors import InvalidParameter
from proxy.policy.outcome import Outcome, OutcomeKind

IDEMPOTENT_METHODS: Final = frozenset(
    {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"}
)  # RFC 9110
GATEWAY_ERRORS: Final = frozenset({502, 503, 504})


class RetryOn(Enum):
    CONNECT_FAILURE = "connect-failure"
    REFUSED = "refused"
    RESET = "reset"
    FIVE_XX = "5xx"  # any 5xx response, and per-try timeouts (as in Envoy)
    GATEWAY_ERROR = "gateway-error"  # 502, 503, 504
    TIMEOUT = "timeout"  # the per-try timeout fired


_CONDITION_OF: Final = {
    OutcomeKind.CONNECT_FAILURE: RetryOn.CONNECT_FAILURE,
    OutcomeKind.REFUSED: RetryOn.REFUSED,
    OutcomeKind.RESET: RetryOn.RESET,
}
_ALIASES: Final = {"refused-stream": RetryOn.REFUSED, "per-try-timeout": RetryOn.TIMEOUT}


def parse_retry_on(items: Iterable[str | int]) -> tuple[frozenset[RetryOn], frozenset[int]]:
    """Config ``retry_on`` entries -> (conditions, retriable status codes like ``"503"``)."""
    conditions: set[RetryOn] = set()
    codes: set[int] = set()
    for item in items:
        text = str(item).strip()
        if text.isascii() and text.isdigit() and len(text) == 3 and 100 <= int(text) <= 599:
            codes.add(int(text))
            continue
        try:
            conditions.add(_ALIASES.get(text) or RetryOn(text))
        except ValueError:
            known = ", ".join(sorted([c.value for c in RetryOn] + list(_ALIASES)))
            raise InvalidParameter(
                f"retry_on: unknown condition {item!r} (known: {known}, or a status code)"
            ) from None
    return frozenset(conditions), frozenset(codes)


@dataclass(frozen=True)
class RetryParams:
    attempts: int = 2  # total attempts, the first included
    retry_on: frozenset[RetryOn] = frozenset(
        {RetryOn.CONNECT_FAILURE, RetryOn.REFUSED, RetryOn.RESET}
    )
    status_codes: frozenset[int] = frozenset({503})
    per_try_timeout: float = 0.0  # seconds; 0 = none (only the deadline applies)
    retry_non_idempotent: bool = False  # also retry POST/PATCH/... after the app saw them
    backoff_base: float = 0.025
    backoff_max: float = 0.250

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise InvalidParameter(f"retries.attempts: must be >= 1, got {self.attempts!r}")
        for code in sorted(self.status_codes):
            if not 100 <= code <= 599:
                raise InvalidParameter(f"retries.retry_on: not an HTTP status: {code!r}")
        for field in ("per_try_timeout", "backoff_base", "backoff_max"):
            if not getattr(self, field) >= 0:
                raise InvalidParameter(
                    f"retries.{field}: must be >= 0, got {getattr(self, field)!r}"
                )

    @classmethod
    def parse(
        cls, attempts: int = 2, retry_on: Iterable[str | int] = (), per_try_timeout: float = 0.0
    ) -> RetryParams:
        """From config values: ``retry_on`` as written (``[connect-failure, "503"]``)."""
        conditions, codes = parse_retry_on(retry_on)
        return cls(attempts, conditions, codes, per_try_timeout)

    def covers(self, outcome: Outcome) -> bool:
        """Is this outcome one the policy retries on?"""
        kind, on = outcome.kind, self.retry_on
        if outcome.status is not None and outcome.status in self.status_codes:
            return True
        if kind is OutcomeKind.HTTP_5XX:
            return RetryOn.FIVE_XX in on or (
                RetryOn.GATEWAY_ERROR in on and outcome.status in GATEWAY_ERRORS
            )
        if kind is OutcomeKind.TIMEOUT:
            return RetryOn.TIMEOUT in on or RetryOn.FIVE_XX in on
        condition = _CONDITION_OF.get(kind)
        return condition is not None and condition in on


class Verdict(Enum):
    RETRY = "retry"
    SUCCESS = "success"  # the outcome is final and good (or a status nobody retries)
    NOT_RETRIABLE = "not-retriable"
    ATTEMPTS_EXHAUSTED = "attempts-exhausted"
    NON_IDEMPOTENT = "non-idempotent"
    BODY_NOT_REPLAYABLE = "body-not-replayable"
    DEADLINE_EXCEEDED = "deadline-exceeded"
    BUDGET_EXHAUSTED = "budget-exhausted"
    # Not from ``decide``: the retry loop found the max_retries breaker full after it.
    RETRIES_OVERFLOW = "retries-overflow"


@dataclass(frozen=True)
class RetryDecision:
    verdict: Verdict
    backoff: float = 0.0  # seconds to wait before the next attempt (RETRY only)

    @property
    def retry(self) -> bool:
        return self.verdict is Verdict.RETRY


def backoff(retry_number: int, rng: Random, base: float = 0.025, cap: float = 0.250) -> float:
    """Jittered exponential backoff before retry ``retry_number`` (1 = first retry)."""
    if retry_number < 1:
        raise InvalidParameter(f"retry_number: must be >= 1, got {retry_number!r}")
    # Bound the exponent: past 2^30 the bound is long since at the cap.
    bound = min(((1 << min(retry_number, 30)) - 1) * base, cap)
    return rng.random() * bound  # random() < 1, so the bound itself is never reached


def decide(
    params: RetryParams,
    outcome: Outcome,
    *,
    attempt: int,
    method: str,
    body_replayable: bool,
    budget: RetryBudget,
    deadline: Deadline,
    now: float,
    rng: Random,
) -> RetryDecision:
    """Decide after attempt number ``attempt`` (1-based) ended with ``outcome``.

    ``body_replayable``: the request body can be sent again, because it was kept whole
    (the engine keeps up to ``Limits.retry_buffer_bytes``) or none of it was consumed
    yet (e.g. the connect failed).
    Call the breaker's ``max_retries`` after a RETRY verdict, before re-sending."""
    if not outcome.is_error and not params.covers(outcome):
        return RetryDecision(Verdict.SUCCESS)
    if not params.covers(outcome):
        return RetryDecision(Verdict.NOT_RETRIABLE)
    if attempt >= params.attempts:
        return RetryDecision(Verdict.ATTEMPTS_EXHAUSTED)
    if (
        method.upper() not in IDEMPOTENT_METHODS
        and not outcome.never_reached_app
        and not params.retry_non_idempotent
    ):
        return RetryDecision(Verdict.NON_IDEMPOTENT)
    if not body_replayable:
        return RetryDecision(Verdict.BODY_NOT_REPLAYABLE)
    wait = backoff(attempt, rng, params.backoff_base, params.backoff_max)
    # A retry that cannot start before the deadline would only add load (DESIGN §1.8).
    if deadline.expired(now + wait):
        return RetryDecision(Verdict.DEADLINE_EXCEEDED)
    if not budget.try_withdraw(now):
        return RetryDecision(Verdict.BUDGET_EXHAUSTED)
    return RetryDecision(Verdict.RETRY, wait)
