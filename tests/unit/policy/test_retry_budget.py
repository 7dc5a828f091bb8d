"""Retry budget accounting: ratio, minimum per second, window expiry."""

from __future__ import annotations

import pytest

from proxy.policy.budget import BudgetParams, RetryBudget
from proxy.policy.errors import InvalidParameter


def withdraw_all(budget: RetryBudget, now: float) -> int:
    granted = 0
    while budget.try_withdraw(now):
        granted += 1
        assert granted <= 10_000, "budget never ran out"
    return granted


def test_defaults_are_finagle_linkerd() -> None:
    p = BudgetParams()
    assert (p.ratio, p.min_per_second, p.window) == (0.2, 10.0, 10.0)


def test_reserve_is_min_per_second_times_window() -> None:
    budget = RetryBudget()
    assert budget.available(0.0) == 100
    assert withdraw_all(budget, 0.0) == 100
    assert not budget.try_withdraw(0.0)


def test_ratio_of_requests_without_reserve() -> None:
    budget = RetryBudget(BudgetParams(ratio=0.2, min_per_second=0))
    assert not budget.try_withdraw(0.0)
    for _ in range(10):
        budget.deposit(0.0)
    assert budget.available(0.0) == 2
    assert withdraw_all(budget, 0.5) == 2
    for _ in range(4):
        budget.deposit(0.6)
    assert budget.available(0.6) == 0  # 0.8 of a token is not a retry
    budget.deposit(0.6)
    assert withdraw_all(budget, 0.6) == 1


def test_ratio_adds_to_reserve() -> None:
    budget = RetryBudget(BudgetParams(ratio=0.5, min_per_second=1, window=10))
    for _ in range(20):
        budget.deposit(1.0)
    assert withdraw_all(budget, 1.0) == 10 + 10


def test_deposits_expire_after_the_window() -> None:
    budget = RetryBudget(BudgetParams(ratio=0.2, min_per_second=0, window=10, slots=10))
    for _ in range(10):
        budget.deposit(0.0)
    assert budget.available(9.99) == 2
    assert budget.available(10.0) == 0


def test_withdrawals_expire_too_so_the_reserve_refills() -> None:
    budget = RetryBudget(BudgetParams(ratio=0, min_per_second=1, window=10))
    assert withdraw_all(budget, 0.0) == 10
    assert budget.available(5.0) == 0
    assert budget.available(10.0) == 10


def test_slots_expire_one_at_a_time() -> None:
    budget = RetryBudget(BudgetParams(ratio=1, min_per_second=0, window=10, slots=10))
    budget.deposit(0.5)  # slot 0
    budget.deposit(3.5)  # slot 3
    assert budget.available(9.9) == 2
    assert budget.available(10.0) == 1  # slot 0 gone, slot 3 still live
    assert budget.available(13.0) == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [("ratio", -0.1), ("min_per_second", -1), ("window", 0), ("slots", 0)],
)
def test_bad_params_are_named(field: str, value: float) -> None:
    with pytest.raises(InvalidParameter, match=rf"{field}.*{value}"):
        BudgetParams(**{field: value})  # type: ignore[arg-type]
