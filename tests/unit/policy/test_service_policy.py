"""The pieces together, as the request path will call them, over a fake clock."""

from __future__ import annotations

from collections import Counter
from random import Random

from proxy.policy import outcome as oc
from proxy.policy.deadline import Deadline
from proxy.policy.outlier import Health
from proxy.policy.pool import PoolParams
from proxy.policy.retry import Verdict, decide
from proxy.policy.upstream import ServiceParams, ServicePolicy


def serve(
    policy: ServicePolicy[str], rng: Random, now: float, broken: set[str], log: list[str]
) -> Verdict:
    """One request with retries; ``broken`` endpoints reset, the others answer in 5 ms."""
    deadline = Deadline.start(now, 15.0)
    policy.budget.deposit(now)
    tried: set[str] = set()
    for attempt in range(1, 10):
        choice = policy.choose(rng, now, tried)
        assert choice is not None
        tried.add(choice.endpoint)
        log.append(choice.endpoint + (" (probe)" if choice.probe else ""))
        outcome = oc.RESET if choice.endpoint in broken else oc.SUCCESS
        policy.report(choice, outcome, now + 0.005, latency=0.005)
        decision = decide(
            policy.params.retry,
            outcome,
            attempt=attempt,
            method="GET",
            body_replayable=True,
            budget=policy.budget,
            deadline=deadline,
            now=now,
            rng=rng,
        )
        if not decision.retry:
            return decision.verdict
    raise AssertionError("never stopped retrying")


def test_failing_endpoint_is_retried_around_ejected_and_probed() -> None:
    # Round robin keeps sending to "bad" until ejected (peak-EWMA would shun it at once).
    policy: ServicePolicy[str] = ServicePolicy(ServiceParams(PoolParams("round_robin")))
    policy.set_endpoints(["a", "b", "bad"], now=0.0)
    rng, log = Random(5), list[str]()
    verdicts = Counter(serve(policy, rng, i * 0.01, {"bad"}, log) for i in range(200))
    assert verdicts == Counter({Verdict.SUCCESS: 200})  # every failure retried elsewhere
    assert Counter(log)["bad"] == 5  # five consecutive resets, then ejected
    assert policy.detector.ejections_total == 1
    assert policy.detector.health("bad", 2.0) is Health.EJECTED

    # After the 30 s ejection exactly one probe goes out; it fails: ejected for 60 s.
    log.clear()
    for i in range(300):
        serve(policy, rng, 32.0 + i * 0.01, {"bad"}, log)
    assert Counter(log)["bad (probe)"] == 1 and Counter(log)["bad"] == 0
    assert policy.detector.ejected_until("bad") is not None
    assert policy.detector.ejections_total == 2


def test_peak_ewma_shuns_a_failing_endpoint_before_ejection_is_needed() -> None:
    policy: ServicePolicy[str] = ServicePolicy()
    policy.set_endpoints(["a", "b", "bad"], now=0.0)
    rng, log = Random(5), list[str]()
    verdicts = Counter(serve(policy, rng, i * 0.01, {"bad"}, log) for i in range(200))
    assert verdicts == Counter({Verdict.SUCCESS: 200})
    assert Counter(log)["bad"] <= 2, Counter(log)
    assert policy.detector.ejections_total == 0


def test_no_untried_healthy_endpoint_gives_none() -> None:
    policy: ServicePolicy[str] = ServicePolicy()
    policy.set_endpoints({"a": 1, "b": 2}, now=0.0)
    rng = Random(0)
    assert policy.choose(rng, 0.0, tried={"a", "b"}) is None
    choice = policy.choose(rng, 0.0, tried={"a"})
    assert choice is not None and choice.endpoint == "b" and not choice.panic


def test_clusters_report() -> None:
    policy: ServicePolicy[str] = ServicePolicy()
    policy.set_endpoints(["a", "b"], now=0.0)
    for _ in range(5):
        choice = policy.choose(Random(0), 1.0, tried={"b"})
        assert choice is not None
        policy.report(choice, oc.http_5xx(503), 1.25)
    inflight = policy.choose(Random(0), 2.0)
    assert inflight is not None and inflight.endpoint == "b"
    policy.set_endpoints(["a"], now=2.0)  # b drains
    rows = {r.endpoint: r for r in policy.clusters(2.0)}
    assert (rows["a"].health, rows["a"].ejected_until, rows["a"].in_flight) == (
        Health.EJECTED,
        31.25,
        0,
    )
    assert rows["a"].ewma_ms > 900  # failures count as at least the 1 s penalty
    assert (rows["b"].health, rows["b"].in_flight) == (None, 1)
