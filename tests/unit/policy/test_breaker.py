"""Circuit breaker limits, release, overflow counting; and the outcome vocabulary."""

from __future__ import annotations

import pytest

from proxy.policy import outcome as oc
from proxy.policy.breaker import BreakerLimits, Resource
from proxy.policy.breaker_counts import CircuitBreakers
from proxy.policy.errors import AccountingError, InvalidParameter
from proxy.policy.outcome import Outcome, OutcomeKind


def test_envoy_defaults() -> None:
    limits = BreakerLimits()
    assert [limits.limit(k) for k in Resource] == [1024, 1024, 1024, 3]


@pytest.mark.parametrize("kind", list(Resource))
def test_limit_then_overflow_then_release(kind: Resource) -> None:
    breakers = CircuitBreakers(BreakerLimits(**{kind.value: 2}))
    assert breakers.try_acquire(kind) and breakers.try_acquire(kind)
    assert not breakers.try_acquire(kind)
    assert not breakers.try_acquire(kind)
    assert (breakers.in_use(kind), breakers.overflows(kind)) == (2, 2)
    breakers.release(kind)
    assert breakers.try_acquire(kind)
    assert (breakers.in_use(kind), breakers.overflows(kind)) == (2, 2)


def test_kinds_are_independent() -> None:
    breakers = CircuitBreakers(BreakerLimits(max_requests=1, max_retries=1))
    assert breakers.try_acquire(Resource.REQUESTS)
    assert breakers.try_acquire(Resource.RETRIES)
    assert not breakers.try_acquire(Resource.REQUESTS)
    assert breakers.overflows(Resource.RETRIES) == 0
    assert breakers.in_use(Resource.CONNECTIONS) == 0


def test_zero_limit_refuses_everything() -> None:
    breakers = CircuitBreakers(BreakerLimits(max_retries=0))
    assert not breakers.try_acquire(Resource.RETRIES)
    assert breakers.overflows(Resource.RETRIES) == 1


def test_release_without_acquire_is_an_error() -> None:
    breakers = CircuitBreakers()
    with pytest.raises(AccountingError, match="max_pending_requests"):
        breakers.release(Resource.PENDING_REQUESTS)


@pytest.mark.parametrize("value", [-1, 1.5])
def test_bad_limit_is_named(value: float) -> None:
    with pytest.raises(InvalidParameter, match=rf"max_connections.*{value}"):
        BreakerLimits(max_connections=value)  # type: ignore[arg-type]


# -- outcomes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("outcome", "kind", "is_error", "never_reached_app"),
    [
        (Outcome.response(200), OutcomeKind.SUCCESS, False, False),
        (Outcome.response(404), OutcomeKind.SUCCESS, False, False),
        (Outcome.response(503), OutcomeKind.HTTP_5XX, True, False),
        (Outcome.response(500), OutcomeKind.HTTP_5XX, True, False),
        (oc.CONNECT_FAILURE, OutcomeKind.CONNECT_FAILURE, True, True),
        (oc.REFUSED, OutcomeKind.REFUSED, True, True),
        (oc.RESET, OutcomeKind.RESET, True, False),
        (oc.TIMEOUT, OutcomeKind.TIMEOUT, True, False),
    ],
)
def test_outcome_classes(
    outcome: Outcome, kind: OutcomeKind, is_error: bool, never_reached_app: bool
) -> None:
    assert (outcome.kind, outcome.is_error, outcome.never_reached_app) == (
        kind,
        is_error,
        never_reached_app,
    )


def test_outcome_rejects_impossible_statuses() -> None:
    with pytest.raises(InvalidParameter, match="600"):
        Outcome.response(600)
