"""Balancing, retries, ejection, deadlines, budgets and breakers, end to end.

One pod (interceptor rules, ``python -m proxy run --config`` as uid 1337, mesh
``outbound_policy: registry_only``) and one service namespace for the module; each
resilience behaviour has its own service (own VIP, own endpoints) so the policy
state of one test never leaks into another. Assertions are on what the endpoints
received, what the client got back, /clusters and /metrics.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.support.http_server import Mode
from tests.support.l7_scenarios import (
    CONFIG,
    DESIGN_METRICS,
    ENDPOINTS,
    MODES,
    PLAIN,
    PORT,
    REFUSING,
    flag_count,
    flag_evidence,
    tagged,
    vip,
)
from tests.support.mesh_topology import Mesh, mesh
from tests.support.pod_clients import Req, Result, failures

pytestmark = pytest.mark.netns


@pytest.fixture(scope="module")
def m(codec: str) -> Iterator[Mesh]:
    with mesh("pt", CONFIG, ENDPOINTS, codec=codec, refusing=REFUSING) as topo:
        for name, mode in MODES.items():
            topo.endpoints[name].mode = mode
        yield topo


def test_peak_ewma_sends_little_traffic_to_the_slow_endpoint(m: Mesh) -> None:
    results = m.load(vip(30), PORT, 1000, 8, tagged("ewma"), timeout=120)
    assert len(results) == 1000 and not failures(results), failures(results)[:5]
    slow = sum(r.served_by == "slow" for r in results)
    assert slow < 100, f"the 80 ms endpoint got {slow} of 1000 requests (want < 10 %)"
    assert len(m.endpoints["slow"].requests) == slow  # no request hidden from the client


@pytest.mark.parametrize(
    ("name", "n", "bad", "good"),
    [
        ("refusing", 31, None, "refusing-ok"),  # 10.77.1.32: nothing listens (RST on SYN)
        ("resetting", 37, "resetting-bad", "resetting-ok"),  # reads the request, then RST
    ],
)
def test_failing_endpoint_is_retried_on_another_one(
    m: Mesh, name: str, n: int, bad: str | None, good: str
) -> None:
    retries = m.metric("mesh_upstream_retries_total")
    good_before = len(m.endpoints[good].requests)
    bad_before = len(m.endpoints[bad].requests) if bad else 0
    results = m.load(vip(n), PORT, 200, 4, tagged(name))
    ok = [r for r in results if r.status == 200]
    assert len(ok) >= 198, sorted({(r.status, r.served_by) for r in results})
    assert {r.served_by for r in ok} == {good}
    # Round robin puts about every other first try on the failing endpoint; those
    # requests reach the good one as attempt 2 (x-mesh-attempt, set on retries).
    at_good = {s.header("x-test-id"): s for s in m.endpoints[good].requests[good_before:]}
    retried = {i for i, s in at_good.items() if int(s.header("x-mesh-attempt") or "1") >= 2}
    assert len(retried) >= 40, f"only {len(retried)} of 200 requests arrived as a retry"
    if bad is not None:
        bad_ids = set(m.endpoints[bad].ids()[bad_before:])
        assert len(bad_ids) >= 40, f"{bad} got only {len(bad_ids)} requests"
        assert bad_ids <= retried, "requests reset by one endpoint were not retried"
    if m.has_metric("mesh_upstream_retries_total"):  # else: the gap is reported below
        total = m.wait_metric("mesh_upstream_retries_total", retries + len(retried))
        assert total - retries >= len(retried)


@pytest.mark.parametrize("name", DESIGN_METRICS)
def test_design_proxy_metrics_are_exported(m: Mesh, name: str) -> None:
    """Each proxy-internal metric DESIGN.md §6 names is on /metrics (dashboards need it)."""
    assert m.has_metric(name), f"{name} is not exported on :15020/metrics"


def test_fast_503_endpoint_is_ejected_then_probed_back(m: Mesh) -> None:
    bad = m.endpoints["eject-bad"]
    address = "10.77.1.43:9080"
    ejections = m.metric("mesh_outlier_ejections_total")
    # Send until the bad endpoint has failed consecutive_errors (3) times.
    seen: list[Result] = []
    while len(bad.requests) < 3 and len(seen) < 200:
        seen += m.load(vip(32), PORT, 5, 1, tagged(f"ej{len(seen)}"))
    assert len(bad.requests) >= 3, "the 503 endpoint never got 3 requests"
    row = m.endpoint_row("ejecting", address)
    assert row.get("health") == "ejected", row
    # While ejected (1 s) it gets nothing; everything else succeeds.
    count = len(bad.requests)
    during = m.load(vip(32), PORT, 40, 2, tagged("ejected"))
    assert len(bad.requests) == count
    assert len(during) == 40 and not failures(during), failures(during)[:5]
    if m.has_metric("mesh_outlier_ejections_total"):  # sampled once a second
        assert m.wait_metric("mesh_outlier_ejections_total", ejections + 1) > ejections
    # Healthy again: after base_ejection_time it is probed and takes traffic again.
    bad.mode = Mode()
    time.sleep(1.1)
    back = False
    deadline = time.monotonic() + 5
    while not back and time.monotonic() < deadline:
        results = m.load(vip(32), PORT, 20, 2, tagged("back"))
        back = any(r.served_by == "eject-bad" for r in results)
        assert all(r.status == 200 for r in results)
    assert back, "the recovered endpoint never got traffic back"
    assert m.endpoint_row("ejecting", address).get("health") == "healthy"


def test_route_timeout_gives_504_quickly_without_retry_storm(m: Mesh) -> None:
    flags = {"DL", "UT"}
    before = flag_count(m, flags, "504")
    result = m.once(vip(33), PORT, tagged("dl")(0))
    assert result.status == 504
    assert 0.15 <= result.elapsed <= 0.6, f"504 after {result.elapsed:.3f}s, route timeout 200ms"
    time.sleep(0.2)  # anything the proxy would still send must have arrived by now
    attempts = sum(m.endpoints[n].ids().count("dl-0") for n in ("deadline-a", "deadline-b"))
    assert 1 <= attempts <= 3, f"the endpoints saw {attempts} attempts of one request"
    evidence = flag_evidence(m, before, flags, "504", "/dl/0")
    assert evidence, "no DL/UT flag in metrics or access log"


def test_incoming_deadline_header_shortens_the_route_timeout(m: Mesh) -> None:
    result = m.once(vip(33), PORT, tagged("dl100", x_mesh_timeout_ms="100")(0))
    assert result.status == 504
    # Below the route's own 200 ms, or the header did not shorten anything.
    assert 0.07 <= result.elapsed < 0.19, f"504 after {result.elapsed:.3f}s, budget was 100ms"
    seen = [
        s for n in ("deadline-a", "deadline-b") for s in m.endpoints[n].requests
        if s.header("x-test-id") == "dl100-0"
    ]  # fmt: skip
    assert seen, "the request never reached an endpoint"
    assert all(0 < int(s.header("x-mesh-timeout-ms") or "0") <= 100 for s in seen), [
        s.headers for s in seen
    ]


def test_upstream_sees_remaining_budget_and_attempt_number(m: Mesh) -> None:
    result = m.once(vip(33), PORT, tagged("budgethdr", x_test_delay_ms="0")(0))
    assert result.status == 200
    seen = [
        s for n in ("deadline-a", "deadline-b") for s in m.endpoints[n].requests
        if s.header("x-test-id") == "budgethdr-0"
    ]  # fmt: skip
    assert len(seen) == 1
    timeout = seen[0].header("x-mesh-timeout-ms")
    assert timeout is not None and 0 < int(timeout) <= 200, seen[0].headers
    assert seen[0].header("x-mesh-attempt") == "1", seen[0].headers


def test_retry_budget_bounds_retries_when_everything_fails(m: Mesh) -> None:
    names = ("budget-a", "budget-b", "budget-c")
    before = sum(len(m.endpoints[n].requests) for n in names)
    start = time.monotonic()
    results = m.load(vip(34), PORT, 100, 4, tagged("budget"))
    elapsed = time.monotonic() - start
    assert len(results) == 100 and not failures(results, 503), failures(results, 503)[:5]
    sent = sum(len(m.endpoints[n].requests) for n in names) - before
    # ratio 0.1 of 100 requests + min_per_second 1 over the window (2 s) or the run.
    bound = 100 * 1.1 + 1 * max(2.0, elapsed) + 3
    assert sent > 100, "no request was retried at all: the budget was not exercised"
    assert sent <= bound, f"{sent} upstream requests for 100 (budget allows ~{bound:.0f})"


def test_retry_refused_by_the_retry_breaker_returns_the_upstream_response(m: Mesh) -> None:
    """max_retries 1 and 8 concurrent clients: most retries are refused; the client then
    gets the endpoint's own 503 (Envoy hands back the last response), never a 502."""
    names = ("overflow-a", "overflow-b", "overflow-c")
    before = sum(len(m.endpoints[n].requests) for n in names)
    results = m.load(vip(39), PORT, 100, 8, tagged("overflow"))
    odd = failures(results, 503)
    assert len(results) == 100 and not odd, f"{len(odd)} of 100 got a proxy-made reply: {odd[:3]}"
    assert all(r.served_by.startswith("overflow-") for r in results)
    sent = sum(len(m.endpoints[n].requests) for n in names) - before
    assert sent < 300, "every retry happened: the retry breaker was never exercised"


def overflow_burst(m: Mesh, prefix: str) -> tuple[list[Result], list[Result]]:
    """10 concurrent requests to a 500 ms endpoint behind max_requests 2, max_pending 1:
    (rejected with 503, served) after checking the endpoint saw only the served ones."""
    server = m.endpoints["breaker"]
    seen_before = len(server.requests)
    results = m.load(vip(35), PORT, 10, 10, tagged(prefix))
    assert len(results) == 10
    rejected = [r for r in results if r.status == 503]
    served = [r for r in results if r.status == 200]
    assert len(rejected) + len(served) == 10, sorted(r.status for r in results)
    assert len(server.requests) - seen_before == len(served)  # overflows never went out
    return rejected, served


def test_circuit_breaker_overflow_answers_503_uo_immediately(m: Mesh) -> None:
    flags = {"UO"}
    before = flag_count(m, flags, "503")
    rejected, served = overflow_burst(m, "cb")
    assert len(rejected) >= 5, f"only {len(rejected)} of 10 overflowed with max_requests 2"
    assert all(r.elapsed < 0.3 for r in rejected), [round(r.elapsed, 3) for r in rejected]
    assert all(r.served_by == "breaker" for r in served) and len(served) >= 2
    paths = [f"/cb/{r.index}" for r in rejected]
    assert any(flag_evidence(m, before, flags, "503", p) for p in paths), "no UO flag anywhere"


def test_circuit_breaker_overflows_are_counted(m: Mesh) -> None:
    name = "mesh_circuit_breaker_overflows_total"
    assert m.has_metric(name), f"{name} is not exported on :15020/metrics"
    overflows = m.metric(name)
    rejected, _ = overflow_burst(m, "cbcount")
    assert rejected, "nothing overflowed: nothing to count"
    counted = m.wait_metric(name, overflows + len(rejected)) - overflows
    assert counted >= len(rejected), f"{len(rejected)} overflows, {name} rose by {counted:g}"


def test_post_is_retried_after_refusal_but_not_after_503(m: Mesh) -> None:
    bad, ok = m.endpoints["post-503"], m.endpoints["post-ok"]
    b0, o0 = len(bad.requests), len(ok.requests)
    posts = m.load(vip(36), PORT, 30, 1, tagged("post", "POST"))
    gets = m.load(vip(36), PORT, 30, 1, tagged("get"))
    bad_ids, ok_ids = bad.ids()[b0:], ok.ids()[o0:]
    post_503 = {i for i in bad_ids if i.startswith("post-")}
    assert post_503, "no POST reached the 503 endpoint (round robin over 3 endpoints)"
    by_id = {f"post-{r.index}": r for r in posts}
    for i in post_503:
        assert by_id[i].status == 503, f"{i} was answered {by_id[i].status}"
        assert i not in ok_ids, f"{i} got 503 and was retried (POST is not idempotent)"
        assert bad_ids.count(i) == 1
    assert {r.status for r in posts} <= {200, 503}
    assert [by_id[i].status for i in by_id if i not in post_503] == [200] * (30 - len(post_503))
    # POSTs whose first try hit the refusing endpoint were retried: no client saw UF.
    assert sum(r.status == 200 for r in posts) + len(post_503) == 30
    # Contrast: a GET that got 503 is retried elsewhere and succeeds.
    get_503 = {i for i in bad_ids if i.startswith("get-")}
    assert get_503, "no GET reached the 503 endpoint"
    assert len(gets) == 30 and not failures(gets), failures(gets)[:5]
    assert get_503 <= set(ok_ids)


def test_registry_only_unknown_destination_gets_502_nr(m: Mesh) -> None:
    before = flag_count(m, {"NR"}, "502")
    plain = m.endpoints["plain"]
    count = len(plain.requests)
    result = m.once(*PLAIN, Req(target="/not-in-registry"))
    assert result.status == 502
    assert len(plain.requests) == count, "registry_only let the request through"
    evidence = flag_evidence(m, before, {"NR"}, "502", "/not-in-registry")
    assert evidence, "no NR flag in metrics or access log"


def test_requests_are_counted_in_istio_requests_total(m: Mesh) -> None:
    labels = {"destination_service_name": "ewma", "response_code": "200", "reporter": "source"}
    before = m.metric("istio_requests_total", **labels)
    results = m.load(vip(30), PORT, 20, 2, tagged("counted"))
    assert len(results) == 20 and not failures(results), failures(results)[:5]
    deadline = time.monotonic() + 3
    while m.metric("istio_requests_total", **labels) - before < 20:
        assert time.monotonic() < deadline, "istio_requests_total did not count 20 requests"
        time.sleep(0.05)
    assert m.metric("istio_requests_total", **labels) - before == 20
