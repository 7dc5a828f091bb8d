"""The policy core's once-per-attempt shortcuts agree with the general code.

Each shortcut (``EndpointTable.take``, the inline peak-EWMA cost, ``PeakEwma.observe``
with its weight inline, the budget's deposit without an expiry scan, the retry loop's
inline deadline arithmetic) is driven side by side with the general path it stands
for, through the same random draws and clocks, and must give the same results.
"""

from __future__ import annotations

import math
import random

import pytest

from proxy.policy import Deadline, RetryParams, ServicePolicy
from proxy.policy.balancer import PeakEwmaBalancer, draw_two, peak_ewma_cost
from proxy.policy.budget import BudgetParams, RetryBudget
from proxy.policy.endpoints import EndpointState, EndpointTable
from proxy.policy.ewma import PeakEwma
from proxy.policy.retrying import RetryLoop, Send


def _clock(rng: random.Random, steps: int) -> list[float]:
    """Mostly forward, sometimes standing still or a little behind (out-of-order reports)."""
    now, times = 0.0, []
    for _ in range(steps):
        now += rng.choice([0.0, 0.001, 0.01, 0.5, 3.0, -0.2])
        times.append(now)
    return times


def test_take_is_pick_then_start() -> None:
    weights = {"a": 1.0, "b": 1.0, "c": 2.0}
    fast, slow = EndpointTable(), EndpointTable()
    fast.set_endpoints(weights, 0.0)
    slow.set_endpoints(weights, 0.0)
    frng, srng, script = random.Random(3), random.Random(3), random.Random(4)
    open_fast, open_slow = [], []
    for now in _clock(script, 400):
        now = max(now, 0.0)
        exclude = script.choice([frozenset(), frozenset({"a"}), frozenset({"b", "c"}), {"x"}])
        got = fast.take(frng, now, exclude)
        picked = slow.pick(srng, now, exclude)
        want = None if picked is None else slow.start(picked, now)
        assert got == want
        if got is not None and want is not None:
            open_fast.append(got)
            open_slow.append(want)
        if open_fast and script.random() < 0.6:  # finish one, same latency on both sides
            i = script.randrange(len(open_fast))
            latency = script.choice([None, 0.002, 0.3])
            ok = script.random() < 0.8
            fast.finish(open_fast.pop(i), now + 0.01, latency, ok)
            slow.finish(open_slow.pop(i), now + 0.01, latency, ok)
        if script.random() < 0.02:  # membership changes keep the ready tuple in step
            changed = dict.fromkeys(script.sample(["a", "b", "c", "d"], 3), 1.0)
            fast.set_endpoints(changed, now)
            slow.set_endpoints(changed, now)
        elif script.random() < 0.02:
            one = script.choice(["a", "b", "c", "d"])
            if script.random() < 0.5:
                fast.add(one, now, 3.0)
                slow.add(one, now, 3.0)
            else:
                fast.remove(one)
                slow.remove(one)
    assert fast.stats(1000.0) == slow.stats(1000.0)


def _states(latencies: list[float]) -> list[EndpointState[str]]:
    states = []
    for i, latency in enumerate(latencies):
        state: EndpointState[str] = EndpointState(f"e{i}", 1.0, PeakEwma(0.0, latency))
        state.in_flight = i % 3
        states.append(state)
    return states


def test_peak_ewma_choice_is_the_cheaper_of_draw_two_by_peak_ewma_cost() -> None:
    latencies = [0.010, 0.030, 0.005, 0.2]
    fast, slow = _states(latencies), _states(latencies)
    frng, srng = random.Random(11), random.Random(11)
    balancer = PeakEwmaBalancer()
    for step, now in enumerate(_clock(random.Random(12), 300)):
        got = balancer.choose(fast, frng, now)
        a, b = draw_two(slow, srng)
        want = b if peak_ewma_cost(b, now) < peak_ewma_cost(a, now) else a
        assert got.endpoint == want.endpoint
        got.ewma.observe(now, 0.001 * (step % 50))
        want.ewma.observe(now, 0.001 * (step % 50))
    assert [s.ewma.estimate for s in fast] == [s.ewma.estimate for s in slow]


def test_observe_is_the_documented_blend() -> None:
    ewma = PeakEwma(0.0, 0.05, decay=2.0)
    estimate, updated = 0.05, 0.0
    script = random.Random(5)
    for now in _clock(script, 500):
        rtt = script.choice([0.0, 0.001, 0.02, 0.08])
        if rtt > estimate:
            estimate = rtt
        else:
            w = math.exp(-max(0.0, now - updated) / 2.0)
            estimate = estimate * w + rtt * (1.0 - w)
        updated = max(updated, now)
        assert ewma.observe(now, rtt) == estimate
        assert (ewma.estimate, ewma.updated_at) == (estimate, updated)


def _slow_deposit(budget: RetryBudget, now: float) -> None:
    """The general deposit: find the current slot, expiring old ones, every time. (A
    function, not a subclass: the compiled build's classes take no Python subclass.)"""
    budget._current(now)[1] += budget._deposit


@pytest.mark.parametrize("seed", range(5))
def test_budget_deposit_shortcut_keeps_the_same_balance(seed: int) -> None:
    params = BudgetParams(ratio=0.5, min_per_second=0.2, window=2.0, slots=4)
    fast, slow = RetryBudget(params), RetryBudget(params)
    script = random.Random(seed)
    for now in _clock(script, 600):
        now = max(now, 0.0)
        action = script.random()
        if action < 0.6:
            fast.deposit(now)
            _slow_deposit(slow, now)
        elif action < 0.9:
            assert fast.try_withdraw(now) == slow.try_withdraw(now)
        else:
            assert fast.available(now) == slow.available(now)
        assert list(fast._slots) == list(slow._slots)


@pytest.mark.parametrize("per_try", [0.0, 0.05, 1.0])
@pytest.mark.parametrize("at", [None, 10.0])
@pytest.mark.parametrize("now", [0.0, 9.96, 9.999, 10.0, 11.0])
def test_send_timeout_is_the_deadlines_attempt_timeout(
    per_try: float, at: float | None, now: float
) -> None:
    deadline = Deadline(at)
    loop: RetryLoop[str] = RetryLoop(
        RetryParams(per_try_timeout=per_try),
        ServicePolicy(),
        deadline,
        "GET",
        frozenset(),
        random.Random(1),
        True,
    )
    step = loop.begin(now)
    if deadline.expired(now):
        assert not isinstance(step, Send)
    else:
        assert isinstance(step, Send)
        assert step.timeout == (deadline.attempt_timeout(now, per_try) or 0.0)
    loop.end()
