"""The soak's pass rule on made-up periods: errors, lost bytes, a short period, and
growth after warm-up (last three periods against the second) each fail it."""

from __future__ import annotations

from dataclasses import replace

from tests.support.soak import FD_SLACK, RSS_SLACK_KIB, Sample, failures
from tests.support.soak_traffic import Counters

PLANNED = 100.0


def _periods(rss: list[int], fds: list[int] | None = None) -> list[Sample]:
    fds = fds or [30] * len(rss)
    return [
        Sample(i + 1, Counters(requests=100, streams=5), r, f, 0, "")
        for i, (r, f) in enumerate(zip(rss, fds, strict=True))
    ]


def test_steady_periods_pass_even_with_a_big_warm_up() -> None:
    assert failures(_periods([20_000, 40_000, 41_000, 40_500, 42_000, 41_000]), PLANNED) == []


def test_rss_growth_past_the_slack_after_warm_up_fails() -> None:
    grown = 40_000 + RSS_SLACK_KIB + 1
    found = failures(_periods([20_000, 40_000, 40_000, 40_000, 40_000, grown]), PLANNED)
    assert len(found) == 1 and found[0].startswith("RSS grew")
    # growth that came back down before the last three periods is not growth
    assert failures(_periods([20_000, 40_000, grown, 40_000, 40_000, 40_000]), PLANNED) == []


def test_ten_percent_of_a_large_baseline_is_allowed() -> None:
    base = 200_000
    within = failures(_periods([base, base, base, base + base // 10]), PLANNED)
    over = failures(_periods([base, base, base, base + base // 10 + 1]), PLANNED)
    assert within == [] and len(over) == 1


def test_fd_growth_fails() -> None:
    found = failures(_periods([1, 1, 1, 1], [20, 30, 30, 30 + FD_SLACK + 1]), PLANNED)
    assert len(found) == 1 and found[0].startswith("open fds grew")


def test_an_error_a_lost_byte_or_a_short_period_fails() -> None:
    steady = _periods([1, 1, 1, 1])
    bad = [
        replace(steady[2], counts=Counters(requests=100, errors=["http: 503"])),
        replace(steady[2], counts=Counters(requests=100, lost_bytes=1)),
        replace(steady[2], counts=Counters(requests=79)),
        replace(steady[2], proxy_errors=1),
    ]
    for sample in bad:
        found = failures([*steady[:2], sample, steady[3]], PLANNED)
        assert len(found) == 1 and found[0].startswith("period 3"), found
