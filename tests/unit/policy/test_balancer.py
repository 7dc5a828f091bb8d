"""Balancers and the endpoint pool: P2C choice, exclusion, weights, simulations, draining."""

from __future__ import annotations

from collections import Counter
from random import Random

import pytest

from proxy.policy.balancer import BALANCERS, make_balancer
from proxy.policy.endpoints import BalancerParams, EndpointTable
from proxy.policy.errors import AccountingError, InvalidParameter


def pool_of(*endpoints: str, balancer: str = "peak_ewma", **params: float) -> EndpointTable[str]:
    pool: EndpointTable[str] = EndpointTable(BalancerParams(balancer=balancer, **params))
    pool.set_endpoints(endpoints, now=0.0)
    return pool


def shares(pool: EndpointTable[str], picks: int, seed: int = 7, now: float = 0.0) -> Counter[str]:
    rng = Random(seed)
    counts: Counter[str] = Counter()
    for _ in range(picks):
        chosen = pool.pick(rng, now)
        assert chosen is not None
        counts[chosen] += 1
    return counts


def test_registry_names_and_unknown_name() -> None:
    assert set(BALANCERS) == {"peak_ewma", "least_request", "round_robin", "random"}
    assert EndpointTable().params.balancer == "peak_ewma"
    with pytest.raises(InvalidParameter, match="'fastest'"):
        make_balancer("fastest")
    with pytest.raises(InvalidParameter, match="'fastest'"):
        BalancerParams(balancer="fastest")


# -- P2C ------------------------------------------------------------------------------


@pytest.mark.parametrize("balancer", ["peak_ewma", "least_request"])
def test_p2c_two_endpoints_always_takes_the_cheaper(balancer: str) -> None:
    pool = pool_of("busy", "idle", balancer=balancer)
    for _ in range(3):
        pool.start("busy", now=0.0)
    # Two distinct candidates: with two endpoints both are always drawn.
    assert shares(pool, 200) == Counter({"idle": 200})


@pytest.mark.parametrize("balancer", ["peak_ewma", "least_request"])
def test_p2c_three_endpoints_never_takes_the_most_expensive(balancer: str) -> None:
    pool = pool_of("a", "b", "c", balancer=balancer)
    for endpoint, load in (("a", 0), ("b", 1), ("c", 2)):
        for _ in range(load):
            pool.start(endpoint, now=0.0)
    counts = shares(pool, 3000)
    assert counts["c"] == 0
    # The cheapest wins whenever it is one of the two drawn: 2/3 of picks, not all.
    assert 0.62 < counts["a"] / 3000 < 0.71


def test_peak_ewma_cost_prefers_lower_latency_at_equal_load() -> None:
    pool = pool_of("fast", "slow")
    pool.finish(pool.start("fast", 0.0), now=0.005, latency=0.005, ok=True)
    pool.finish(pool.start("slow", 0.0), now=0.080, latency=0.080, ok=True)
    assert shares(pool, 100, now=0.1) == Counter({"fast": 100})


def test_peak_ewma_cost_is_latency_times_load() -> None:
    # fast: 10 ms x (3 + 1) = 40 ms > slow: 30 ms x (0 + 1): the loaded fast one loses.
    pool = pool_of("fast", "slow")
    pool.finish(pool.start("fast", 0.0), now=0.0, latency=0.010, ok=True)
    pool.finish(pool.start("slow", 0.0), now=0.0, latency=0.030, ok=True)
    for _ in range(3):
        pool.start("fast", 0.0)
    assert shares(pool, 50) == Counter({"slow": 50})


def test_pick_excludes_tried_endpoints_and_respects_among() -> None:
    pool = pool_of("a", "b", "c")
    rng = Random(1)
    for _ in range(50):
        assert pool.pick(rng, 0.0, exclude={"a", "b"}) == "c"
        assert pool.pick(rng, 0.0, exclude={"a"}) in {"b", "c"}
        assert pool.pick(rng, 0.0, among={"b"}) == "b"
    assert pool.pick(rng, 0.0, exclude={"a", "b", "c"}) is None
    assert pool.pick(rng, 0.0, exclude={"a"}, among={"a"}) is None
    assert pool_of().pick(rng, 0.0) is None


# -- weights --------------------------------------------------------------------------


@pytest.mark.parametrize("balancer", ["peak_ewma", "least_request", "random"])
def test_weights_set_the_share_when_costs_are_equal(balancer: str) -> None:
    pool: EndpointTable[str] = EndpointTable(BalancerParams(balancer=balancer))
    pool.set_endpoints({"heavy": 3, "light": 1}, now=0.0)
    counts = shares(pool, 4000)
    assert 0.72 < counts["heavy"] / 4000 < 0.78


def test_round_robin_is_exact_and_interleaved_with_weights() -> None:
    pool: EndpointTable[str] = EndpointTable(BalancerParams(balancer="round_robin"))
    pool.set_endpoints({"a": 2, "b": 1}, now=0.0)
    rng = Random(0)
    assert [pool.pick(rng, 0.0) for _ in range(6)] == ["a", "b", "a", "a", "b", "a"]
    assert shares(pool, 300) == Counter({"a": 200, "b": 100})


def test_round_robin_rotates_in_order_and_skips_excluded() -> None:
    pool = pool_of("a", "b", "c", balancer="round_robin")
    rng = Random(0)
    assert [pool.pick(rng, 0.0) for _ in range(6)] == ["a", "b", "c", "a", "b", "c"]
    assert [pool.pick(rng, 0.0, exclude={"b"}) for _ in range(4)] == ["a", "c", "a", "c"]


def test_least_request_spreads_evenly_at_equal_load() -> None:
    counts = shares(pool_of("a", "b", "c", balancer="least_request"), 3000)
    assert all(900 < counts[e] < 1100 for e in "abc"), counts


def test_random_is_uniform_with_equal_weights() -> None:
    counts = shares(pool_of("a", "b", "c", "d", balancer="random"), 4000)
    assert all(900 < counts[e] < 1100 for e in "abcd"), counts


def test_bad_weight_is_rejected_naming_it() -> None:
    pool = pool_of("a")
    with pytest.raises(InvalidParameter, match=r"'b'.*-1"):
        pool.add("b", now=0.0, weight=-1)
    with pytest.raises(InvalidParameter, match=r"'c'.*0"):
        pool.set_endpoints({"b": 1, "c": 0}, now=0.0)
    assert [s.endpoint for s in pool.stats(0.0)] == ["a"]  # a bad list changes nothing


# -- simulations with a fake clock -------------------------------------------------------


def simulate(
    pool: EndpointTable[str], latency: dict[str, float], fails: set[str], picks: int
) -> Counter[str]:
    """Sequential requests: each one's latency advances the fake clock."""
    rng, now, counts = Random(42), 0.0, Counter[str]()
    for _ in range(picks):
        endpoint = pool.pick(rng, now)
        assert endpoint is not None
        counts[endpoint] += 1
        attempt = pool.start(endpoint, now)
        now += latency[endpoint]
        pool.finish(attempt, now, latency=latency[endpoint], ok=endpoint not in fails)
    return counts


def test_slow_endpoint_gets_under_10_percent() -> None:
    pool = pool_of("fast1", "fast2", "slow")
    counts = simulate(pool, {"fast1": 0.005, "fast2": 0.005, "slow": 0.080}, set(), 1000)
    assert counts["slow"] < 100, counts
    assert counts["fast1"] > 300 and counts["fast2"] > 300, counts


def test_fast_failing_endpoint_does_not_attract_traffic() -> None:
    latency = {"ok1": 0.005, "ok2": 0.005, "broken": 0.0005}
    counts = simulate(pool_of("ok1", "ok2", "broken"), latency, {"broken"}, 1000)
    assert counts["broken"] < 50, counts
    # Control: without the failure penalty the broken endpoint looks fastest and wins.
    naive = simulate(
        pool_of("ok1", "ok2", "broken", failure_penalty=1e-9), latency, {"broken"}, 1000
    )
    assert naive["broken"] > 500, naive


def test_finish_without_latency_uses_elapsed_time() -> None:
    pool = pool_of("a")
    pool.finish(pool.start("a", 1.0), now=1.5, latency=None, ok=True)
    assert pool.stats(1.5)[0].ewma_ms == pytest.approx(500.0)


# -- membership and accounting --------------------------------------------------------------


def test_removed_endpoint_drains_then_disappears() -> None:
    pool = pool_of("a", "b")
    attempt = pool.start("a", 0.0)
    pool.set_endpoints(["b"], now=1.0)
    rng = Random(3)
    assert {pool.pick(rng, 1.0) for _ in range(50)} == {"b"}
    rows = {s.endpoint: (s.in_flight, s.draining) for s in pool.stats(1.0)}
    assert rows == {"b": (0, False), "a": (1, True)}
    pool.finish(attempt, now=2.0, latency=0.01, ok=True)
    assert [s.endpoint for s in pool.stats(2.0)] == ["b"]
    with pytest.raises(AccountingError, match="'a'"):
        pool.finish(attempt, now=2.0, latency=0.01, ok=True)


def test_readded_draining_endpoint_keeps_its_state() -> None:
    pool = pool_of("a")
    pool.start("a", 0.0)
    pool.remove("a")
    pool.add("a", now=1.0, weight=2)
    (row,) = pool.stats(1.0)
    assert (row.endpoint, row.in_flight, row.weight, row.draining) == ("a", 1, 2.0, False)


def test_start_unknown_endpoint_and_double_finish_are_errors() -> None:
    pool = pool_of("a")
    with pytest.raises(AccountingError, match="'zz'"):
        pool.start("zz", 0.0)
    attempt = pool.start("a", 0.0)
    pool.finish(attempt, 0.1, latency=0.1, ok=True)
    with pytest.raises(AccountingError):
        pool.finish(attempt, 0.2, latency=0.1, ok=True)
    assert pool.stats(0.2)[0].in_flight == 0


def test_equal_weights_draw_every_ordered_pair_of_distinct_candidates_evenly() -> None:
    from proxy.policy.balancer import draw_two

    pool = pool_of("a", "b", "c")
    ready = list(pool._active.values())
    rng = Random(11)
    draws = Counter(tuple(c.endpoint for c in draw_two(ready, rng)) for _ in range(60000))
    assert all(a != b for a, b in draws)
    assert len(draws) == 6
    assert all(abs(n - 10000) < 500 for n in draws.values()), draws  # ~5 sigma
