"""Deadline parsing (good and bad headers) and arithmetic."""

from __future__ import annotations

import pytest

from proxy.policy.deadline import (
    TIMER_SLACK,
    Deadline,
    parse_grpc_timeout,
    parse_mesh_timeout,
)
from proxy.policy.errors import InvalidParameter


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (b"1500", 1.5),
        ("250", 0.25),
        (b" 42\t", 0.042),
        (b"0", 0.0),
        (b"9999999999", 9999999.999),
        # malformed: ignored
        (b"", None),
        (b"-5", None),
        (b"+5", None),
        (b"1.5", None),
        (b"1e3", None),
        (b"100ms", None),
        (b"0x10", None),
        (b"12345678901", None),
        (b"1 2", None),
        (b"100, 200", None),
        ("١٢٣", None),  # Arabic-Indic digits: isdigit() but not ASCII
        (b"\xff", None),
    ],
)
def test_parse_mesh_timeout(value: bytes | str, seconds: float | None) -> None:
    result = parse_mesh_timeout(value)
    assert result == (None if seconds is None else pytest.approx(seconds))


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (b"2H", 7200.0),
        (b"3M", 180.0),
        (b"10S", 10.0),
        (b"250m", 0.25),
        (b"1500u", 0.0015),
        (b"99999999n", 0.099999999),
        ("5S", 5.0),
        # malformed: ignored
        (b"10", None),
        (b"10s", None),
        (b"10X", None),
        (b"S", None),
        (b"123456789m", None),  # 9 digits: the spec allows 8
        (b"-1S", None),
        (b"1.5S", None),
        (b"10 S", None),
    ],
)
def test_parse_grpc_timeout(value: bytes | str, seconds: float | None) -> None:
    result = parse_grpc_timeout(value)
    assert result == (None if seconds is None else pytest.approx(seconds))


@pytest.mark.parametrize(
    ("route", "headers", "at", "source"),
    [
        (15.0, [], 115.0, "route"),
        (None, [], None, "none"),
        (0.0, [], None, "none"),  # 0 = no timeout
        (15.0, [(b"x-mesh-timeout-ms", b"2000")], 102.0, "x-mesh-timeout-ms"),
        (1.0, [(b"x-mesh-timeout-ms", b"2000")], 101.0, "route"),  # cannot extend
        (15.0, [(b"grpc-timeout", b"500m")], 100.5, "grpc-timeout"),
        (
            15.0,
            [(b"grpc-timeout", b"3S"), (b"x-mesh-timeout-ms", b"4000")],
            103.0,
            "grpc-timeout",
        ),
        (None, [(b"X-Mesh-Timeout-Ms", b"700")], 100.7, "x-mesh-timeout-ms"),
        (None, [("x-mesh-timeout-ms", "700")], 100.7, "x-mesh-timeout-ms"),
        (15.0, [(b"x-mesh-timeout-ms", b"soon")], 115.0, "route"),  # bad header ignored
        (None, [(b"grpc-timeout", b"1 S")], None, "none"),
        (
            None,
            [(b"x-mesh-timeout-ms", b"900"), (b"x-mesh-timeout-ms", b"300")],
            100.3,
            "x-mesh-timeout-ms",
        ),
        (15.0, [(b"x-other", b"1")], 115.0, "route"),
    ],
)
def test_deadline_is_the_earliest(
    route: float | None, headers: list[tuple[bytes, bytes]], at: float | None, source: str
) -> None:
    deadline = Deadline.start(100.0, route, headers)
    assert deadline.at == (None if at is None else pytest.approx(at))
    assert deadline.source == source


def test_negative_route_timeout_is_rejected() -> None:
    with pytest.raises(InvalidParameter, match="-1"):
        Deadline.start(0.0, -1.0)


def test_remaining_and_expired() -> None:
    d = Deadline.start(10.0, 2.0)
    assert d.remaining(11.5) == pytest.approx(0.5)
    assert not d.expired(11.999)
    assert d.expired(12.0) and d.expired(13.0)
    assert d.remaining(13.0) == 0.0
    none = Deadline(None)
    assert none.remaining(1e9) is None and not none.expired(1e9)


def test_a_timeout_within_a_timers_slack_of_the_deadline_spent_it() -> None:
    d = Deadline.start(10.0, 2.0)
    assert d.spent_by_timeout(12.0 - TIMER_SLACK) and d.spent_by_timeout(12.5)
    assert not d.spent_by_timeout(12.0 - 2 * TIMER_SLACK)  # a per-try timeout: time is left
    assert not Deadline(None).spent_by_timeout(1e9)


@pytest.mark.parametrize(
    ("at", "now", "per_try", "expected"),
    [
        (12.0, 10.0, 0.0, 2.0),  # no per-try timeout: what is left
        (12.0, 10.0, 0.5, 0.5),
        (12.0, 11.8, 0.5, 0.2),  # the deadline is nearer than the per-try timeout
        (None, 10.0, 0.5, 0.5),
        (None, 10.0, 0.0, None),
        (12.0, 13.0, 0.5, 0.0),
    ],
)
def test_attempt_timeout(
    at: float | None, now: float, per_try: float, expected: float | None
) -> None:
    result = Deadline(at).attempt_timeout(now, per_try)
    assert result == (None if expected is None else pytest.approx(expected))


@pytest.mark.parametrize(
    ("at", "now", "mesh"),
    [
        (12.0, 10.0, "2000"),
        (12.0, 10.0005, "1999"),  # whole ms, rounded down
        (12.0, 11.9999, "1"),  # never 0 while time is left
        (12.0, 12.0, None),  # expired: nothing to send, the request fails
        (None, 10.0, None),
        (200000.0, 0.0, "200000000"),
    ],
)
def test_header_values_to_send(at: float | None, now: float, mesh: str | None) -> None:
    assert Deadline(at).header_value(now) == mesh


def test_propagated_header_parses_back_to_the_same_deadline() -> None:
    first = Deadline.start(0.0, 15.0)
    value = first.header_value(3.25)
    assert value == "11750"
    second = Deadline.start(3.25, 30.0, [(b"x-mesh-timeout-ms", value.encode())])
    assert second.at == pytest.approx(first.at)
