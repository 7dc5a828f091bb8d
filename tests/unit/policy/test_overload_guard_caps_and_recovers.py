"""The worker's overload guard as a table of admissions: each cap refuses past its limit,
counts the refusal by reason, lets the next one in once a slot is released, and the
buffered-bytes cap recovers only below 90 % of itself (no flapping)."""

from __future__ import annotations

import pytest

from proxy.policy.errors import AccountingError, InvalidParameter
from proxy.policy.overload import (
    FD_RESERVE,
    Overload,
    OverloadLimits,
    Reason,
    fd_connection_cap,
)


def guard(**limits: int) -> tuple[Overload, list[Reason]]:
    told: list[Reason] = []
    return Overload(OverloadLimits(**limits), on_reject=told.append), told


def test_connections_past_the_cap_are_refused_until_one_closes() -> None:
    overload, told = guard(max_downstream_connections=2)
    assert [overload.admit_connection() for _ in range(4)] == [True, True, False, False]
    assert overload.connections == 2
    assert told == [Reason.DOWNSTREAM_CONNECTIONS] * 2
    overload.connection_closed()
    assert overload.admit_connection() is True
    assert overload.rejections[Reason.DOWNSTREAM_CONNECTIONS] == 2


def test_the_descriptor_limit_caps_connections_below_the_configured_cap() -> None:
    overload = Overload(OverloadLimits(max_downstream_connections=10_000), nofile=256)
    assert overload.connection_limit == fd_connection_cap(256) == (256 - FD_RESERVE) // 2
    admitted = sum(overload.admit_connection() for _ in range(200))
    assert admitted == 96


@pytest.mark.parametrize(
    ("nofile", "cap"), [(20_000, 9_968), (1024, 480), (256, 96), (65, 1), (10, 1)]
)
def test_descriptor_cap_table(nofile: int, cap: int) -> None:
    assert fd_connection_cap(nofile) == cap


def test_pending_requests_past_the_cap_are_refused() -> None:
    overload, told = guard(max_pending_requests=1)
    assert overload.admit_pending() is True
    assert overload.admit_pending() is False
    overload.pending_done()
    assert overload.admit_pending() is True
    assert told == [Reason.PENDING_REQUESTS]


def test_buffered_bytes_overload_and_recover_with_hysteresis() -> None:
    overload, _ = guard(max_buffered_bytes=1000)
    overload.hold(600)
    overload.hold(400)
    assert overload.overloaded is False  # at the cap, not past it
    overload.hold(1)
    assert overload.overloaded is True
    overload.release(95)  # 906: still above 90 %
    assert overload.overloaded is True
    overload.release(6)  # 900
    assert overload.overloaded is False
    overload.hold(50)  # 950: below the cap, so still fine
    assert overload.overloaded is False
    overload.release(950)
    assert overload.buffered == 0


def test_a_reload_applies_the_new_caps_to_what_is_already_held() -> None:
    overload, _ = guard(max_buffered_bytes=1000, max_downstream_connections=5)
    overload.hold(800)
    for _ in range(3):
        assert overload.admit_connection()
    overload.apply(OverloadLimits(max_buffered_bytes=700, max_downstream_connections=2))
    assert overload.overloaded is True
    assert overload.admit_connection() is False  # 3 open, the cap is now 2
    overload.apply(OverloadLimits(max_buffered_bytes=10_000, max_downstream_connections=8))
    assert overload.overloaded is False
    assert overload.admit_connection() is True


def test_refused_requests_are_counted_as_buffered_bytes() -> None:
    overload, told = guard()
    overload.refuse_request()
    assert told == [Reason.BUFFERED_BYTES]
    assert overload.rejections == {
        Reason.DOWNSTREAM_CONNECTIONS: 0,
        Reason.PENDING_REQUESTS: 0,
        Reason.BUFFERED_BYTES: 1,
    }


def test_releasing_what_was_never_taken_is_a_bug() -> None:
    overload, _ = guard()
    with pytest.raises(AccountingError):
        overload.connection_closed()
    with pytest.raises(AccountingError):
        overload.pending_done()
    overload.hold(10)
    with pytest.raises(AccountingError):
        overload.release(11)


@pytest.mark.parametrize(
    "field",
    [
        "max_downstream_connections",
        "max_pending_requests",
        "per_connection_buffer_bytes",
        "max_buffered_bytes",
    ],
)
@pytest.mark.parametrize("bad", [0, -1, True, 1.5])
def test_limits_must_be_positive_ints(field: str, bad: object) -> None:
    with pytest.raises(InvalidParameter, match=f"overload.{field}"):
        OverloadLimits(**{field: bad})  # type: ignore[arg-type]
