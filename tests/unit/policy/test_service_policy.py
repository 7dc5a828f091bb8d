"""The pieces together, as the request path will call them, over a fake clock."""

from __future__ import annotations

from collections import Counter
from random import Random

from proxy.policy import outcome as oc
from proxy.policy.deadline import Deadline
from proxy.policy.endpoints import BalancerParams
from proxy.policy.outcome import Outcome
from proxy.policy.outlier import Health, OutlierParams
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
    policy: ServicePolicy[str] = ServicePolicy(ServiceParams(BalancerParams("round_robin")))
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
        policy.report(choice, Outcome.response(503), 1.25)
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


def test_a_connection_pick_goes_round_robin_for_learning_balancers_and_starts_nothing() -> None:
    policy: ServicePolicy[str] = ServicePolicy()  # peak_ewma: nothing to learn from at L4
    assert policy.pick(Random(1), 0.0) is None
    policy.set_endpoints(["a", "b", "c"], now=0.0)
    assert [policy.pick(Random(1), 0.0) for _ in range(6)] == ["a", "b", "c"] * 2
    assert [r.in_flight for r in policy.clusters(0.0)] == [0, 0, 0]


def test_a_connection_pick_keeps_weights_skips_ejected_and_claims_no_probe() -> None:
    params = ServiceParams(BalancerParams("round_robin"), OutlierParams(consecutive_errors=1))
    policy: ServicePolicy[str] = ServicePolicy(params)
    policy.set_endpoints({"a": 2, "b": 1, "bad": 1}, now=0.0)
    rng = Random(3)
    choice = policy.choose(rng, 0.0, tried={"a", "b"})
    assert choice is not None and choice.endpoint == "bad"
    policy.report(choice, oc.RESET, 0.0)  # ejected for 30 s
    assert Counter(policy.pick(rng, 1.0) for _ in range(300)) == Counter({"a": 200, "b": 100})
    # The ejection is over: connections may go there, and HTTP still gets its probe.
    assert Counter(policy.pick(rng, 40.0) for _ in range(8))["bad"] == 2
    probe = policy.choose(rng, 40.0, tried={"a", "b"})
    assert probe is not None and probe.endpoint == "bad" and probe.probe


def test_a_connection_pick_with_random_is_weighted() -> None:
    policy: ServicePolicy[str] = ServicePolicy(ServiceParams(BalancerParams("random")))
    policy.set_endpoints({"a": 3, "b": 1}, now=0.0)
    rng = Random(11)
    seen = Counter(policy.pick(rng, 0.0) for _ in range(4000))
    assert 2800 <= seen["a"] <= 3200 and seen["a"] + seen["b"] == 4000


def test_every_ejection_turns_the_health_filter_back_on() -> None:
    params = ServiceParams(outlier=OutlierParams(consecutive_errors=1, max_ejection_percent=100))
    policy: ServicePolicy[str] = ServicePolicy(params)
    policy.set_endpoints(["a", "b", "c", "d"], now=0.0)
    rng = Random(2)
    for t, bad in enumerate(["a", "b"]):
        choice = policy.choose(rng, float(t), tried=set("abcd") - {bad})
        assert choice is not None
        policy.report(choice, oc.RESET, float(t))
    picked = {c.endpoint for c in (policy.choose(rng, 2.0) for _ in range(40)) if c is not None}
    assert picked == {"c", "d"}
    # Two healthy of four is not below the 50 % panic threshold; a third ejection is.
    choice = policy.choose(rng, 3.0, tried={"a", "b", "d"})
    assert choice is not None and choice.endpoint == "c"
    policy.report(choice, oc.RESET, 3.0)
    panic = policy.choose(rng, 3.0, tried={"c", "d"})
    assert panic is not None and panic.panic
