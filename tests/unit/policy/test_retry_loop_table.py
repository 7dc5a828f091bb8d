"""The retry loop's state machine as a table: events in, actions out, no sockets, no sleep.

Each row scripts one request: the events the shell would feed (``begin``, ``head``,
``failed``, ``unpicked``, ``next``) at fake times, with the action expected back.
Backoffs come from ``Random(SEED)``: the n-th retry decided draws ``DRAW[n - 1]``.
After the script, the row's breaker slots and budget are checked, and ``end`` must
hand every slot back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from random import Random
from typing import Any

import pytest

from proxy.mesh.forward import _stopped  # the shell's half: the error a Stop raises
from proxy.policy import outcome as oc
from proxy.policy.breaker import BreakerLimits, Resource
from proxy.policy.budget import BudgetParams
from proxy.policy.deadline import TIMER_SLACK, Deadline
from proxy.policy.errors import SequenceError
from proxy.policy.outcome import Outcome
from proxy.policy.retry import RetryOn, RetryParams, Verdict
from proxy.policy.retrying import (
    DEADLINE,
    NO_ENDPOINT,
    NOT_THE_ENDPOINTS,
    OVERFLOW,
    Answer,
    Phase,
    RetryLoop,
    Send,
    Stop,
    Wait,
)
from proxy.policy.upstream import ServiceParams, ServicePolicy

SEED = 7
_rng = Random(SEED)
DRAW = [_rng.random() for _ in range(3)]
BASE = RetryParams().backoff_base  # 25 ms: the first retry's bound
NONE: frozenset[str] = frozenset()
LAST = object()  # stands for the ``Send`` the previous step returned
S503 = Outcome.response(503)
TIMEOUTS = RetryParams(retry_on=frozenset({RetryOn.TIMEOUT}), per_try_timeout=0.25)


def failure(verdict: Verdict) -> Stop:
    return Stop(Answer.FAILURE, verdict)


@dataclass
class Row:
    script: list[tuple[Any, ...]]  # (event, *args, expected)
    retry: RetryParams = field(default_factory=RetryParams)
    method: str = "GET"
    deadline: float | None = 1.0
    outside: frozenset[str] = NONE
    breakers: BreakerLimits = field(default_factory=BreakerLimits)
    budget: BudgetParams = field(default_factory=BudgetParams)
    held: tuple[int, int] = (1, 0)  # max_requests and max_retries slots in use at the end
    withdrawn: int = 0  # budget tokens the retries spent
    phase: Phase = Phase.DONE


ROWS = {
    "success on the first try": Row(
        [("begin", 0.0, Send(1, NONE, 1.0, True))], phase=Phase.SENDING
    ),
    "a refused connect, then another endpoint": Row(
        [
            ("begin", 0.0, Send(1, NONE, 1.0, True)),
            ("failed", "a", oc.REFUSED, True, 0.125, Wait(DRAW[0] * BASE)),
            ("next", 0.25, Send(2, frozenset({"a"}), 0.75, False)),
        ],
        held=(1, 1),
        withdrawn=1,
        phase=Phase.SENDING,
    ),
    "a reset POST is final: it may have reached the app": Row(
        [
            ("begin", 0.0, Send(1, NONE, 1.0, True)),
            ("failed", "a", oc.RESET, True, 0.125, failure(Verdict.NON_IDEMPOTENT)),
        ],
        method="POST",
    ),
    "a refused POST never reached the app: retried": Row(
        [
            ("begin", 0.0, Send(1, NONE, 1.0, True)),
            ("failed", "a", oc.CONNECT_FAILURE, True, 0.125, Wait(DRAW[0] * BASE)),
        ],
        method="POST",
        held=(1, 1),
        withdrawn=1,
        phase=Phase.BACKOFF,
    ),
    "a covered 503 head is discarded, then retried; the last attempt is not asked": Row(
        [
            ("begin", 0.0, Send(1, NONE, 1.0, True)),
            ("head", 200, True, 0.125, False),
            ("head", 503, True, 0.125, True),
            ("failed", "a", S503, True, 0.125, Wait(DRAW[0] * BASE)),
            ("next", 0.25, Send(2, frozenset({"a"}), 0.75, False)),
        ],
        held=(1, 1),
        withdrawn=1,
        phase=Phase.SENDING,
    ),
    "a 503 head on the last attempt stands: attempts exhausted": Row(
        [
            ("begin", 0.0, Send(1, NONE, 1.0, False)),
            ("head", 503, True, 0.125, False),
            ("failed", "a", oc.RESET, True, 0.125, failure(Verdict.ATTEMPTS_EXHAUSTED)),
        ],
        retry=RetryParams(attempts=1),
    ),
    "a 503 not in retry_on is passed on": Row(
        [
            ("begin", 0.0, Send(1, NONE, 1.0, True)),
            ("head", 503, True, 0.125, False),
        ],
        retry=RetryParams(status_codes=frozenset({429})),
        phase=Phase.SENDING,
    ),
    "a 429 listed in retry_on is discarded like a 503": Row(
        [
            ("begin", 0.0, Send(1, NONE, 1.0, True)),
            ("head", 429, True, 0.125, True),
            ("failed", "a", Outcome.response(429), True, 0.125, Wait(DRAW[0] * BASE)),
        ],
        retry=RetryParams(status_codes=frozenset({429})),
        held=(1, 1),
        withdrawn=1,
        phase=Phase.BACKOFF,
    ),
    "an empty budget: the 503 is passed on, a reset stands": Row(
        [
            ("begin", 0.0, Send(1, NONE, 1.0, True)),
            ("head", 503, True, 0.125, False),
            ("failed", "a", oc.RESET, True, 0.125, failure(Verdict.BUDGET_EXHAUSTED)),
        ],
        budget=BudgetParams(ratio=0, min_per_second=0),
    ),
    "a full max_retries breaker: the 503 is passed on, a refusal stands": Row(
        [
            ("begin", 0.0, Send(1, NONE, 1.0, True)),
            ("head", 503, True, 0.125, False),
            ("failed", "a", oc.REFUSED, True, 0.125, failure(Verdict.RETRIES_OVERFLOW)),
        ],
        breakers=BreakerLimits(max_retries=0),
        withdrawn=2,  # the budget said yes both times; the breaker said no
    ),
    "a body that cannot be replayed: the 503 is passed on, a reset stands": Row(
        [
            ("begin", 0.0, Send(1, NONE, 1.0, True)),
            ("head", 503, False, 0.125, False),
            ("failed", "a", oc.RESET, False, 0.125, failure(Verdict.BODY_NOT_REPLAYABLE)),
        ],
    ),
    "the deadline passes during the backoff: 504 DL": Row(
        [
            ("begin", 0.0, Send(1, NONE, 1.0, True)),
            ("failed", "a", oc.RESET, True, 0.875, Wait(DRAW[0] * BASE)),
            ("next", 1.0, DEADLINE),
        ],
        held=(1, 1),
        withdrawn=1,
    ),
    "a backoff that would end past the deadline is not taken: the failure stands": Row(
        [
            ("begin", 0.0, Send(1, NONE, 1.0, True)),
            (
                "failed",
                "a",
                oc.RESET,
                True,
                1.0 - DRAW[0] * BASE / 2,
                failure(Verdict.DEADLINE_EXCEEDED),
            ),
        ],
    ),
    "a per-try timeout moves on; a timer that was the deadline's is 504 DL": Row(
        [
            ("begin", 0.0, Send(1, NONE, 0.25, True)),
            ("failed", "a", oc.TIMEOUT, True, 0.25, Wait(DRAW[0] * BASE)),
            ("next", 0.75, Send(2, frozenset({"a"}), 0.25, True)),  # per-try still wins
            # The timer fired a little early by our clock, but it was the deadline's.
            ("failed", "b", oc.TIMEOUT, True, 1.0 - TIMER_SLACK / 2, DEADLINE),
        ],
        retry=RetryParams(attempts=3, retry_on=TIMEOUTS.retry_on, per_try_timeout=0.25),
        held=(1, 1),
        withdrawn=1,
    ),
    "the deadline shortens the per-try timeout": Row(
        [
            ("begin", 0.875, Send(1, NONE, 0.125, True)),
            ("failed", "a", oc.TIMEOUT, True, 1.0, DEADLINE),
        ],
        retry=TIMEOUTS,
    ),
    "without a deadline the per-try timeout is the attempt's, and 0 is none": Row(
        [
            ("begin", 0.0, Send(1, NONE, 0.25, True)),
            ("failed", "a", oc.TIMEOUT, True, 1000.0, Wait(DRAW[0] * BASE)),
        ],
        retry=TIMEOUTS,
        deadline=None,
        held=(1, 1),
        withdrawn=1,
        phase=Phase.BACKOFF,
    ),
    "all of the subset tried: any endpoint of the subset again, then 503 UH": Row(
        [
            ("begin", 0.0, Send(1, frozenset({"x"}), 1.0, True)),
            ("failed", "a", oc.REFUSED, True, 0.0, Wait(DRAW[0] * BASE)),
            ("next", 0.0, Send(2, frozenset({"x", "a"}), 1.0, True)),
            ("unpicked", LAST, Send(2, frozenset({"x"}), 1.0, True)),
            ("failed", "a", oc.REFUSED, True, 0.0, Wait(DRAW[1] * BASE * 3)),
            ("next", 0.0, Send(3, frozenset({"x", "a"}), 1.0, False)),
            ("unpicked", LAST, Send(3, frozenset({"x"}), 1.0, False)),
            ("unpicked", LAST, NO_ENDPOINT),
        ],
        retry=RetryParams(attempts=3),
        outside=frozenset({"x"}),
        held=(1, 1),
        withdrawn=2,
    ),
    "nothing to pick on the first attempt: 503 UH": Row(
        [
            ("begin", 0.0, Send(1, NONE, 1.0, True)),
            ("unpicked", LAST, NO_ENDPOINT),
        ],
    ),
    "our own pool full: no retry, not the endpoint's fault": Row(
        [
            ("begin", 0.0, Send(1, NONE, 1.0, True)),
            ("failed", "a", None, True, 0.125, NOT_THE_ENDPOINTS),
        ],
    ),
    "max_requests full: 503 UO before anything": Row(
        [("begin", 0.0, OVERFLOW)],
        breakers=BreakerLimits(max_requests=0),
        held=(0, 0),
    ),
    "a request that arrives after its deadline: 504 DL": Row(
        [("begin", 1.0, DEADLINE)],
    ),
}


@pytest.mark.parametrize("row", ROWS.values(), ids=ROWS.keys())
def test_retry_loop(row: Row) -> None:
    policy: ServicePolicy[str] = ServicePolicy(
        ServiceParams(breakers=row.breakers, budget=row.budget)
    )
    deadline = Deadline(row.deadline)
    loop = RetryLoop(row.retry, policy, deadline, row.method, row.outside, Random(SEED), True)
    tokens = policy.budget.available(0.0)
    last: object = None
    for event, *args, expected in row.script:
        args = [last if a is LAST else a for a in args]
        got = getattr(loop, event)(*args)
        assert got == expected, (event, args)
        last = got
    breakers = policy.breakers
    held = (breakers.in_use(Resource.REQUESTS), breakers.in_use(Resource.RETRIES))
    assert held == row.held
    assert loop.phase is row.phase
    # A deposit is a fifth of a token: only the withdrawals show in whole tokens.
    assert policy.budget.available(0.0) == tokens - row.withdrawn
    loop.end()
    assert (breakers.in_use(Resource.REQUESTS), breakers.in_use(Resource.RETRIES)) == (0, 0)
    assert loop.phase is Phase.DONE


def test_the_max_retries_slot_is_held_from_one_decision_to_the_next() -> None:
    policy: ServicePolicy[str] = ServicePolicy(ServiceParams(breakers=BreakerLimits(max_retries=1)))
    other: RetryLoop[str] = RetryLoop(
        RetryParams(3), policy, Deadline(None), "GET", NONE, Random(1), True
    )
    loop: RetryLoop[str] = RetryLoop(
        RetryParams(3), policy, Deadline(None), "GET", NONE, Random(1), True
    )
    other.begin(0.0), loop.begin(0.0)
    assert isinstance(loop.failed("a", oc.RESET, True, 0.0), Wait)
    assert policy.breakers.in_use(Resource.RETRIES) == 1
    # Another request's retry finds the one slot taken.
    assert other.failed("a", oc.RESET, True, 0.0) == failure(Verdict.RETRIES_OVERFLOW)
    loop.next(0.0)
    # The same request's second retry hands its slot back first, so it may go on.
    assert isinstance(loop.failed("b", oc.RESET, True, 0.0), Wait)
    assert policy.breakers.in_use(Resource.RETRIES) == 1
    assert policy.breakers.overflows(Resource.RETRIES) == 1
    loop.end(), other.end()
    assert policy.breakers.in_use(Resource.RETRIES) == 0


@pytest.mark.parametrize(
    ("steps", "event"),
    [
        ([], "next"),
        ([("begin", 0.0)], "begin"),
        ([("begin", 0.0)], "next"),
        ([("begin", 0.0), ("failed", "a", oc.RESET, True, 0.0)], "head"),
        ([("begin", 0.0), ("end",)], "unpicked"),
    ],
)
def test_events_out_of_order_are_refused(steps: list[tuple[Any, ...]], event: str) -> None:
    policy: ServicePolicy[str] = ServicePolicy()
    loop: RetryLoop[str] = RetryLoop(
        RetryParams(), policy, Deadline(None), "GET", NONE, Random(1), True
    )
    for name, *args in steps:
        getattr(loop, name)(*args)
    args: dict[str, tuple[Any, ...]] = {
        "next": (0.0,),
        "begin": (0.0,),
        "head": (503, True, 0.0),
        "unpicked": (Send(1, NONE, 0.0, False),),
    }
    with pytest.raises(SequenceError, match=event):
        getattr(loop, event)(*args[event])


@pytest.mark.parametrize(
    ("stop", "status", "flag"),
    [(DEADLINE, 504, "DL"), (NO_ENDPOINT, 503, "UH"), (OVERFLOW, 503, "UO")],
)
def test_what_each_stop_tells_the_client(stop: Stop, status: int, flag: str) -> None:
    error = _stopped(stop, "reviews")
    assert (error.status, error.flag.value) == (status, flag)
    assert "reviews" in str(error) or stop is DEADLINE
