"""Why peak-EWMA stops sending to an endpoint that refuses connections: the policy
pieces (balancer, outlier detector, retry decisions) driven on a fake clock.

This is the pure half of ``tests/netns/mesh/test_retry_elsewhere_and_ejection.py``'s
refusing scenario: there, 500 requests through the real sidecar see no error and the
refusing endpoint is ejected; here, the same policy says how often it is tried.
"""

from __future__ import annotations

import math
from collections import Counter
from random import Random

import pytest

from proxy.policy import (
    Deadline,
    EndpointTable,
    Health,
    OutlierParams,
    RetryParams,
    ServiceParams,
    ServicePolicy,
    Verdict,
    decide,
)
from proxy.policy import outcome as oc


def serve_once(policy: ServicePolicy[str], rng: Random, now: float, dead: set[str]) -> list[str]:
    """One GET with retries; ``dead`` endpoints refuse the connection, the others answer
    in 5 ms. Returns the endpoints tried, in order (the last one answered 200)."""
    deadline = Deadline.start(now, 15.0)
    policy.budget.deposit(now)
    tried: list[str] = []
    for attempt in range(1, 10):
        choice = policy.choose(rng, now, set(tried))
        assert choice is not None
        tried.append(choice.endpoint)
        outcome = oc.REFUSED if choice.endpoint in dead else oc.SUCCESS
        policy.report(choice, outcome, now + 0.005, latency=None if outcome.is_error else 0.005)
        decision = decide(
            policy.params.retry, outcome, attempt=attempt, method="GET", body_replayable=True,
            budget=policy.budget, deadline=deadline, now=now, rng=rng,
        )  # fmt: skip
        if not decision.retry:
            assert decision.verdict is Verdict.SUCCESS, (tried, decision)
            return tried
    raise AssertionError("never stopped retrying")


def tries(policy: ServicePolicy[str], dead: set[str], n: int = 300) -> Counter[str]:
    rng, seen = Random(7), Counter[str]()
    for i in range(n):
        seen.update(serve_once(policy, rng, i * 0.01, dead))
    return seen


def test_peak_ewma_keeps_trying_a_refusing_endpoint_until_it_is_ejected() -> None:
    policy: ServicePolicy[str] = ServicePolicy()  # peak-EWMA, eject after 5
    policy.set_endpoints(["a", "b", "dead"], now=0.0)
    seen = tries(policy, {"dead"})
    assert seen["dead"] == 5, seen  # exactly the consecutive-errors threshold
    assert policy.detector.health("dead", 3.0) is Health.EJECTED
    assert policy.detector.ejections_total == 1


def test_refusals_keep_the_latency_penalty_when_no_ejection_can_follow() -> None:
    off: ServicePolicy[str] = ServicePolicy(ServiceParams(outlier=OutlierParams(0)))
    off.set_endpoints(["a", "b", "dead"], now=0.0)
    assert tries(off, {"dead"})["dead"] <= 2  # shunned by peak-EWMA instead
    # max_ejection_percent leaves room for one: the second dead endpoint is shunned.
    # (Three attempts, so a request that meets both dead endpoints still succeeds.)
    capped: ServicePolicy[str] = ServicePolicy(
        ServiceParams(outlier=OutlierParams(max_ejection_percent=25), retry=RetryParams(3))
    )
    capped.set_endpoints(["a", "b", "dead1", "dead2"], now=0.0)
    seen = tries(capped, {"dead1", "dead2"})
    assert capped.detector.ejections_total == 1
    # The other one was tried freely only while an ejection could still follow; once
    # the cap was full its next refusal carried the penalty: no traffic after that.
    assert max(seen["dead1"], seen["dead2"]) == 5 and min(seen["dead1"], seen["dead2"]) <= 5
    assert seen["a"] + seen["b"] == 300


def test_an_unmeasured_finish_ends_the_attempt_and_leaves_the_estimate() -> None:
    pool: EndpointTable[str] = EndpointTable()
    pool.set_endpoints(["a"], now=0.0)
    attempt = pool.start("a", 0.0)
    pool.finish(attempt, 0.5, None, ok=False, measured=False)
    (row,) = pool.stats(0.5)
    assert row.in_flight == 0
    assert row.ewma_ms == pytest.approx(30.0 * math.exp(-0.5 / 10.0))  # decay only
    attempt = pool.start("a", 0.5)
    pool.finish(attempt, 0.6, None, ok=False)  # measured: the 1 s failure penalty
    assert pool.stats(0.6)[0].ewma_ms == pytest.approx(1000.0)
