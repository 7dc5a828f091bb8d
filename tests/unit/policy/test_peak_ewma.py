"""Peak-EWMA math with exact numbers (fake clock: plain floats)."""

from __future__ import annotations

import math

import pytest

from proxy.policy.ewma import DEFAULT_RTT, MIN_RTT, PeakEwma


def test_new_estimator_starts_at_30ms() -> None:
    assert PeakEwma(now=5.0).read(5.0) == pytest.approx(0.030)
    assert DEFAULT_RTT == 0.030


def test_sample_above_estimate_replaces_it() -> None:
    ewma = PeakEwma(now=0.0)
    assert ewma.observe(0.0, 0.050) == 0.050
    assert ewma.observe(0.0, 0.200) == 0.200


def test_sample_below_estimate_blends_with_time_weight() -> None:
    ewma = PeakEwma(now=0.0)
    ewma.observe(0.0, 0.050)
    w = math.exp(-10.0 / 10.0)
    assert ewma.observe(10.0, 0.010) == pytest.approx(0.050 * w + 0.010 * (1 - w))
    assert ewma.estimate == pytest.approx(0.024715177646857693)


def test_sample_below_estimate_with_no_elapsed_time_changes_nothing() -> None:
    ewma = PeakEwma(now=0.0)
    ewma.observe(0.0, 0.100)
    assert ewma.observe(0.0, 0.001) == 0.100


def test_read_decays_toward_zero_and_stores() -> None:
    ewma = PeakEwma(now=0.0)
    assert ewma.read(10.0) == pytest.approx(0.030 * math.exp(-1))
    assert ewma.updated_at == 10.0
    # Decay composes: reading at 10 then 20 equals one read at 20.
    assert ewma.read(20.0) == pytest.approx(0.030 * math.exp(-2))


def test_peek_does_not_disturb_state() -> None:
    ewma = PeakEwma(now=0.0)
    assert ewma.peek(10.0) == pytest.approx(0.030 * math.exp(-1))
    assert ewma.estimate == 0.030 and ewma.updated_at == 0.0


def test_cost_basis_is_floored_at_1ms() -> None:
    ewma = PeakEwma(now=0.0)
    assert ewma.read(100.0) < MIN_RTT
    assert ewma.cost_basis(100.0) == MIN_RTT == 0.001


def test_custom_decay_window() -> None:
    ewma = PeakEwma(now=0.0, initial=0.100, decay=1.0)
    assert ewma.read(2.0) == pytest.approx(0.100 * math.exp(-2))


def test_out_of_order_time_counts_as_no_elapsed_time() -> None:
    ewma = PeakEwma(now=10.0)
    assert ewma.observe(5.0, 0.010) == pytest.approx(0.030)
    assert ewma.updated_at == 10.0


def test_cost_basis_is_read_then_the_floor_whatever_the_clock_does() -> None:
    # One inlined call, so it must move the state exactly as ``read`` does.
    times = [0.0, 0.5, 0.5, 3.0, 2.0, 2.5, 40.0, 41.0]  # repeats and a clock behind
    fast, slow = PeakEwma(now=0.0, initial=0.2), PeakEwma(now=0.0, initial=0.2)
    for i, now in enumerate(times):
        assert fast.cost_basis(now) == max(slow.read(now), MIN_RTT)
        assert (fast.estimate, fast.updated_at) == (slow.estimate, slow.updated_at)
        fast.observe(now, 0.01 * i)
        slow.observe(now, 0.01 * i)
