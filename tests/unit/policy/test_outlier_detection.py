"""Outlier detection: ejection timing, max-percent cap, probe admission, panic mode."""

from __future__ import annotations

import pytest

from proxy.policy import outcome as oc
from proxy.policy.errors import InvalidParameter
from proxy.policy.outcome import Outcome
from proxy.policy.outlier import Ejection, Health, OutlierDetector, OutlierParams


def detector(*endpoints: str, **params: float) -> OutlierDetector[str]:
    d: OutlierDetector[str] = OutlierDetector(OutlierParams(**params))  # type: ignore[arg-type]
    d.set_endpoints(endpoints, now=0.0)
    return d


def fail(
    d: OutlierDetector[str], endpoint: str, now: float, times: int = 5
) -> Ejection[str] | None:
    event = None
    for _ in range(times):
        event = d.record(endpoint, Outcome.response(503), now)
    return event


def probe(d: OutlierDetector[str], endpoint: str, now: float, ok: bool) -> Ejection[str] | None:
    assert endpoint in d.routing(now).endpoints
    assert d.on_attempt(endpoint, now) is True
    return d.record(endpoint, oc.SUCCESS if ok else oc.RESET, now)


def test_ejects_on_the_fifth_consecutive_error() -> None:
    d = detector("a", "b", "c", "d")
    assert fail(d, "a", 1.0, times=4) is None
    assert d.health("a", 1.0) is Health.HEALTHY
    assert d.record("a", oc.CONNECT_FAILURE, 2.0) == Ejection(
        "a", at=2.0, until=32.0, times_ejected=1
    )
    assert d.health("a", 2.0) is Health.EJECTED and d.ejected_until("a") == 32.0
    assert d.routing(2.0).endpoints == {"b", "c", "d"}
    assert d.ejections_total == 1


@pytest.mark.parametrize(
    "error", [Outcome.response(500), oc.CONNECT_FAILURE, oc.REFUSED, oc.RESET, oc.TIMEOUT]
)
def test_every_error_kind_counts(error: oc.Outcome) -> None:
    d = detector("a", "b")
    for _ in range(5):
        d.record("a", error, 0.0)
    assert d.health("a", 0.0) is Health.EJECTED


def test_a_success_resets_the_consecutive_count() -> None:
    d = detector("a", "b")
    fail(d, "a", 0.0, times=4)
    d.record("a", oc.SUCCESS, 0.0)
    assert fail(d, "a", 0.0, times=4) is None
    assert d.health("a", 0.0) is Health.HEALTHY
    assert fail(d, "a", 0.0, times=1) is not None


def test_ejection_time_grows_with_each_ejection_and_is_capped() -> None:
    d = detector("a", "b", base_ejection_time=30, max_ejection_time=100)
    now, durations = 0.0, list[float]()
    event = fail(d, "a", now)
    while event is not None and len(durations) < 5:
        durations.append(event.until - event.at)
        now = event.until
        assert d.health("a", now - 0.001) is Health.EJECTED
        assert d.health("a", now) is Health.PROBING
        event = probe(d, "a", now, ok=False)
    assert durations == [30, 60, 90, 100, 100]
    assert d.ejections_total == 6  # the loop stops after the sixth ejection began


def test_probe_admits_exactly_one_request() -> None:
    d = detector("a", "b", "c", "d")
    fail(d, "a", 0.0)
    assert "a" not in d.routing(29.9).endpoints
    assert d.routing(30.0).endpoints == {"a", "b", "c", "d"}
    assert d.on_attempt("a", 30.0) is True
    assert d.routing(30.0).endpoints == {"b", "c", "d"}  # the probe is out: no more
    assert d.on_attempt("a", 30.1) is False
    assert d.on_attempt("b", 30.1) is False  # healthy endpoints are never probes
    assert d.record("a", oc.SUCCESS, 30.5) is None
    assert d.health("a", 30.5) is Health.HEALTHY
    assert "a" in d.routing(30.5).endpoints


def test_probe_success_resets_count_but_remembers_recent_ejections() -> None:
    d = detector("a", "b")
    fail(d, "a", 0.0)
    probe(d, "a", 30.0, ok=True)
    assert fail(d, "a", 31.0, times=4) is None  # count restarted after the probe
    event = fail(d, "a", 31.0, times=1)
    assert event is not None and event.until - event.at == 60.0  # second ejection: 2 x base


def test_time_spent_healthy_forgives_past_ejections() -> None:
    d = detector("a", "b", interval=10)
    fail(d, "a", 0.0)
    probe(d, "a", 30.0, ok=True)
    event = fail(d, "a", 40.0)  # a full interval healthy: the first ejection is forgiven
    assert event is not None and (event.times_ejected, event.until - event.at) == (1, 30.0)


def test_results_during_ejection_are_ignored() -> None:
    d = detector("a", "b")
    fail(d, "a", 0.0)
    assert fail(d, "a", 10.0) is None  # late answers to requests sent before the ejection
    assert d.ejected_until("a") == 30.0
    assert d.record("a", oc.RESET, 30.0) is None  # PROBING, no probe sent: still ignored
    assert d.health("a", 30.0) is Health.PROBING


def test_unreported_probe_frees_the_slot_after_probe_timeout() -> None:
    d = detector("a", "b", probe_timeout=5)
    fail(d, "a", 0.0)
    assert d.on_attempt("a", 30.0)
    assert "a" not in d.routing(34.9).endpoints
    assert "a" in d.routing(35.0).endpoints
    assert d.on_attempt("a", 35.0)


@pytest.mark.parametrize(
    ("endpoints", "percent", "ejectable"),
    [(4, 50, 2), (10, 50, 5), (3, 50, 1), (3, 10, 1), (10, 10, 1), (10, 100, 10), (4, 0, 0)],
)
def test_max_ejection_percent(endpoints: int, percent: float, ejectable: int) -> None:
    names = [f"e{i}" for i in range(endpoints)]
    d = detector(*names, max_ejection_percent=percent, panic_threshold=0)
    ejected = [n for n in names if fail(d, n, 1.0) is not None]
    assert len(ejected) == ejectable
    assert sum(d.health(n, 1.0) is Health.EJECTED for n in names) == ejectable


def test_probing_endpoint_still_counts_against_the_cap() -> None:
    d = detector("a", "b", "c", "d", max_ejection_percent=25)
    fail(d, "a", 0.0)
    assert d.health("a", 30.0) is Health.PROBING
    assert fail(d, "b", 30.0) is None and d.health("b", 30.0) is Health.HEALTHY
    probe(d, "a", 30.0, ok=True)
    # b's count is still at the threshold: its next error ejects it, now that a is back.
    assert fail(d, "b", 31.0, times=1) is not None


def test_panic_routes_to_everything_when_under_half_is_healthy() -> None:
    d = detector("a", "b", "c", "d", max_ejection_percent=100)
    fail(d, "a", 0.0)
    fail(d, "b", 0.0)
    routing = d.routing(1.0)
    assert (routing.endpoints, routing.panic) == (
        frozenset({"c", "d"}),
        False,
    )  # 50 % healthy: not below
    fail(d, "c", 0.0)
    routing = d.routing(1.0)
    assert (routing.endpoints, routing.panic) == (frozenset("abcd"), True)
    assert [d.health(n, 1.0) for n in "abcd"] == [Health.EJECTED] * 3 + [Health.HEALTHY]


def test_single_endpoint_may_be_ejected_and_then_panic_keeps_it_routable() -> None:
    d = detector("only")
    assert fail(d, "only", 0.0) is not None
    assert d.routing(1.0).endpoints == {"only"} and d.routing(1.0).panic


def test_disabled_detection_never_ejects() -> None:
    d = detector("a", "b", consecutive_errors=0)
    assert fail(d, "a", 0.0, times=50) is None
    assert d.health("a", 0.0) is Health.HEALTHY


def test_membership_changes_keep_history_and_forget_removed() -> None:
    d = detector("a", "b", "c")
    fail(d, "a", 0.0)
    d.set_endpoints(["a", "c", "new"], now=1.0)
    assert d.health("a", 1.0) is Health.EJECTED
    assert d.health("new", 1.0) is Health.HEALTHY
    assert d.record("b", oc.RESET, 1.0) is None
    assert d.on_attempt("b", 1.0) is False
    with pytest.raises(InvalidParameter, match="'b'"):
        d.health("b", 1.0)
    assert d.routing(1.0).endpoints == {"c", "new"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("consecutive_errors", -1),
        ("base_ejection_time", 0),
        ("max_ejection_time", 1),  # below base (30)
        ("max_ejection_percent", 101),
        ("panic_threshold", -5),
    ],
)
def test_bad_params_are_named(field: str, value: float) -> None:
    with pytest.raises(InvalidParameter, match=rf"{field}.*{value}"):
        OutlierParams(**{field: value})  # type: ignore[arg-type]
