"""Retry decisions (outcome x method x budget x attempts x deadline) and backoff bounds."""

from __future__ import annotations

from random import Random

import pytest

from proxy.policy import outcome as oc
from proxy.policy.budget import BudgetParams, RetryBudget
from proxy.policy.deadline import Deadline
from proxy.policy.errors import InvalidParameter
from proxy.policy.outcome import Outcome
from proxy.policy.retry import (
    RetryOn,
    RetryParams,
    Verdict,
    backoff,
    decide,
    parse_retry_on,
)

DEFAULT = RetryParams()  # attempts 2, connect-failure/refused/reset + 503
NO_DEADLINE = Deadline(None)
WITH = {
    "5xx": RetryParams(retry_on=frozenset({RetryOn.FIVE_XX}), status_codes=frozenset()),
    "gateway": RetryParams(retry_on=frozenset({RetryOn.GATEWAY_ERROR}), status_codes=frozenset()),
    "timeout": RetryParams(retry_on=frozenset({RetryOn.TIMEOUT})),
    "429": RetryParams(status_codes=frozenset({429})),
    "post-ok": RetryParams(retry_non_idempotent=True),
    "3-attempts": RetryParams(attempts=3),
}


def run(
    outcome: Outcome,
    method: str = "GET",
    attempt: int = 1,
    params: RetryParams = DEFAULT,
    replayable: bool = True,
    budget_left: bool = True,
    deadline: Deadline = NO_DEADLINE,
    now: float = 0.0,
) -> Verdict:
    budget = RetryBudget() if budget_left else RetryBudget(BudgetParams(0, 0))
    d = decide(
        params,
        outcome,
        attempt=attempt,
        method=method,
        body_replayable=replayable,
        budget=budget,
        deadline=deadline,
        now=now,
        rng=Random(0),
    )
    assert d.retry == (d.verdict is Verdict.RETRY)
    assert (d.backoff > 0) == d.retry  # Random(0).random() > 0: a retry always waits a little
    return d.verdict


R, S, NR, EX = Verdict.RETRY, Verdict.SUCCESS, Verdict.NOT_RETRIABLE, Verdict.ATTEMPTS_EXHAUSTED


@pytest.mark.parametrize(
    ("outcome", "params", "expected"),
    [
        (oc.SUCCESS, DEFAULT, S),
        (Outcome.response(404), DEFAULT, S),
        (oc.CONNECT_FAILURE, DEFAULT, R),
        (oc.REFUSED, DEFAULT, R),
        (oc.RESET, DEFAULT, R),
        (Outcome.response(503), DEFAULT, R),
        (Outcome.response(500), DEFAULT, NR),
        (Outcome.response(502), DEFAULT, NR),
        (oc.TIMEOUT, DEFAULT, NR),
        (Outcome.response(500), WITH["5xx"], R),
        (oc.TIMEOUT, WITH["5xx"], R),
        (oc.RESET, WITH["5xx"], NR),
        (Outcome.response(502), WITH["gateway"], R),
        (Outcome.response(504), WITH["gateway"], R),
        (Outcome.response(500), WITH["gateway"], NR),
        (oc.TIMEOUT, WITH["timeout"], R),
        (Outcome.response(429), WITH["429"], R),
        (Outcome.response(429), DEFAULT, S),
    ],
)
def test_outcome_conditions(outcome: Outcome, params: RetryParams, expected: Verdict) -> None:
    assert run(outcome, params=params) is expected


@pytest.mark.parametrize(
    ("outcome", "method", "params", "expected"),
    [
        (oc.CONNECT_FAILURE, "POST", DEFAULT, R),  # never reached the app
        (oc.REFUSED, "PATCH", DEFAULT, R),
        (oc.RESET, "POST", DEFAULT, Verdict.NON_IDEMPOTENT),
        (Outcome.response(503), "POST", DEFAULT, Verdict.NON_IDEMPOTENT),
        (oc.RESET, "PATCH", DEFAULT, Verdict.NON_IDEMPOTENT),
        (oc.RESET, "CONNECT", DEFAULT, Verdict.NON_IDEMPOTENT),
        (oc.RESET, "PUT", DEFAULT, R),
        (oc.RESET, "delete", DEFAULT, R),
        (oc.RESET, "HEAD", DEFAULT, R),
        (oc.RESET, "POST", WITH["post-ok"], R),
    ],
)
def test_methods(outcome: Outcome, method: str, params: RetryParams, expected: Verdict) -> None:
    assert run(outcome, method=method, params=params) is expected


@pytest.mark.parametrize(
    ("attempt", "params", "expected"),
    [(1, DEFAULT, R), (2, DEFAULT, EX), (2, WITH["3-attempts"], R), (3, WITH["3-attempts"], EX)],
)
def test_attempts_are_total(attempt: int, params: RetryParams, expected: Verdict) -> None:
    assert run(oc.RESET, attempt=attempt, params=params) is expected


def test_body_budget_and_deadline_rungs() -> None:
    assert run(oc.RESET, replayable=False) is Verdict.BODY_NOT_REPLAYABLE
    assert run(oc.RESET, budget_left=False) is Verdict.BUDGET_EXHAUSTED
    assert run(oc.RESET, deadline=Deadline(5.0), now=5.0) is Verdict.DEADLINE_EXCEEDED
    # The backoff itself would overrun: at most 25 ms for the first retry, 10 ms left.
    assert run(oc.RESET, deadline=Deadline(5.0), now=4.99) is Verdict.DEADLINE_EXCEEDED
    assert run(oc.RESET, deadline=Deadline(5.0), now=4.0) is R
    # Earlier rungs win: a non-retriable outcome is reported as such, not as "budget".
    assert run(Outcome.response(500), budget_left=False) is NR


def test_budget_is_spent_only_by_real_retries() -> None:
    budget = RetryBudget(BudgetParams(ratio=0, min_per_second=0.1, window=10))  # 1 token

    def after(outcome: Outcome) -> Verdict:
        return decide(
            DEFAULT,
            outcome,
            attempt=1,
            method="GET",
            body_replayable=True,
            budget=budget,
            deadline=NO_DEADLINE,
            now=0.0,
            rng=Random(1),
        ).verdict

    assert after(Outcome.response(500)) is NR and budget.available(0.0) == 1
    assert after(oc.RESET) is R and budget.available(0.0) == 0
    assert after(oc.RESET) is Verdict.BUDGET_EXHAUSTED and budget.available(0.0) == 0


def test_retry_backoff_grows_with_the_retry_number() -> None:
    d = decide(
        WITH["3-attempts"],
        oc.RESET,
        attempt=2,
        method="GET",
        body_replayable=True,
        budget=RetryBudget(),
        deadline=Deadline(None),
        now=0.0,
        rng=Random(0),
    )
    assert d.backoff == pytest.approx(Random(0).random() * 0.075)


# -- backoff ---------------------------------------------------------------------------

BOUNDS = {1: 0.025, 2: 0.075, 3: 0.175, 4: 0.250, 5: 0.250, 6: 0.250}  # (2^N-1)x25ms, cap 250


@pytest.mark.parametrize("n", sorted(BOUNDS))
def test_backoff_bounds(n: int) -> None:
    rng = Random(n)
    samples = [backoff(n, rng) for _ in range(2000)]
    assert all(0.0 <= s < BOUNDS[n] for s in samples)
    assert max(samples) > 0.95 * BOUNDS[n]  # spread over the whole range, not stuck low
    assert min(samples) < 0.05 * BOUNDS[n]


class Extreme(Random):
    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


def test_backoff_extremes_never_reach_cap_or_go_negative() -> None:
    assert backoff(1, Extreme(0.0)) == 0.0
    assert backoff(60, Extreme(0.9999999999)) < 0.250
    assert backoff(3, Extreme(0.5), base=0.1, cap=10.0) == pytest.approx(0.35)
    with pytest.raises(InvalidParameter, match="0"):
        backoff(0, Random(0))


# -- config helpers ------------------------------------------------------------------------


def test_parse_retry_on_design_default() -> None:
    conditions, codes = parse_retry_on(["connect-failure", "reset", "refused", "503"])
    assert conditions == {RetryOn.CONNECT_FAILURE, RetryOn.RESET, RetryOn.REFUSED}
    assert codes == {503}
    assert parse_retry_on(["refused-stream", "gateway-error", 429]) == (
        frozenset({RetryOn.REFUSED, RetryOn.GATEWAY_ERROR}),
        frozenset({429}),
    )


@pytest.mark.parametrize("bad", ["bogus", "5xxx", "999", "50"])
def test_parse_retry_on_names_the_bad_entry(bad: str) -> None:
    with pytest.raises(InvalidParameter, match=repr(bad)):
        parse_retry_on(["reset", bad])


@pytest.mark.parametrize(
    ("field", "value"), [("attempts", 0), ("per_try_timeout", -1.0), ("backoff_max", -0.1)]
)
def test_bad_retry_params_are_named(field: str, value: float) -> None:
    with pytest.raises(InvalidParameter, match=rf"{field}.*{value}"):
        RetryParams(**{field: value})  # type: ignore[arg-type]


def test_retry_params_from_config_values() -> None:
    params = RetryParams.parse(attempts=3, retry_on=["5xx", "409"], per_try_timeout=0.5)
    assert (params.attempts, params.retry_on, params.status_codes, params.per_try_timeout) == (
        3,
        frozenset({RetryOn.FIVE_XX}),
        frozenset({409}),
        0.5,
    )
    assert run(Outcome.response(409), params=params) is R
    with pytest.raises(InvalidParameter, match="700"):
        RetryParams(status_codes=frozenset({700}))
