"""Retry elsewhere and ejection through the running sidecar, scenario by scenario.

Same black box as ``test_balancing_retries_deadlines_breakers.py`` (a captured pod
running ``python -m proxy run --config`` as uid 1337, endpoints in a service
namespace), one service per scenario (``tests.support.retry_elsewhere_scenarios``).
Each test asserts the numbers its scenario states: what the clients got, what each endpoint
received (attempt numbers, deadline headers, arrival times), /clusters and /metrics.
"""

from __future__ import annotations

import hashlib
import statistics
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from tests.support import retry_elsewhere_scenarios as sc
from tests.support.http_server import HttpServer, Mode, Seen
from tests.support.l7_scenarios import PORT, flag_count, flag_evidence, tagged, vip
from tests.support.mesh_topology import Mesh, mesh
from tests.support.pod_clients import Client, Req, failures

netns = pytest.mark.netns


@pytest.fixture(scope="module")
def m(codec: str) -> Iterator[Mesh]:
    with mesh("pa", sc.CONFIG, sc.ENDPOINTS, codec=codec, refusing=sc.REFUSING) as topo:
        for name, mode in sc.MODES.items():
            topo.endpoints[name].mode = mode
        yield topo


def seen_by_id(endpoints: list[HttpServer], prefix: str) -> dict[str, list[tuple[str, Seen]]]:
    """Every request whose x-test-id starts with ``prefix``: id -> [(endpoint, seen)]."""
    out: dict[str, list[tuple[str, Seen]]] = {}
    for e in endpoints:
        for s in e.requests:
            i = s.header("x-test-id") or ""
            if i.startswith(prefix):
                out.setdefault(i, []).append((e.name, s))
    return out


def health(m: Mesh, service: str, n: int) -> str:
    return str(m.endpoint_row(service, sc.address(n)).get("health"))


def wait_health(m: Mesh, service: str, n: int, want: str, timeout: float = 2.0) -> str:
    """The endpoint's /clusters health once it is ``want`` (the report of an attempt
    may land a moment after the client has its response), or as last seen."""
    deadline = time.monotonic() + timeout
    while (got := health(m, service, n)) != want and time.monotonic() < deadline:
        time.sleep(0.02)
    return got


def wait_flag(m: Mesh, flags: set[str], code: str, want: float, timeout: float = 3.0) -> float:
    deadline = time.monotonic() + timeout
    while (got := flag_count(m, flags, code)) < want and time.monotonic() < deadline:
        time.sleep(0.05)
    return got


# -- the proof list -------------------------------------------------------------------
# (5 ms / 5 ms / 80 ms over 1,000 requests: the peak-EWMA test of
# test_balancing_retries_deadlines_breakers.py, and the all-failing budget: its retry
# budget test; both state the numbers.)


@netns
def test_refusing_endpoint_500_requests_no_errors_and_it_is_ejected(m: Mesh) -> None:
    """Default policy (peak-EWMA, 2 retries, ejection after 5 consecutive errors)."""
    good = [m.endpoints["refuse-a"], m.endpoints["refuse-b"]]
    results = m.load(vip(50), PORT, 500, 4, tagged("refuse"))
    assert len(results) == 500 and not failures(results), failures(results)[:5]
    assert {r.served_by for r in results} <= {"refuse-a", "refuse-b"}
    seen = seen_by_id(good, "refuse-")
    assert len(seen) == 500 and all(len(v) == 1 for v in seen.values())  # each served once
    # Every refused first try came back as attempt 2 on a good endpoint: 5 consecutive
    # refusals eject it (a few more only if concurrent attempts were already under way).
    retried = sum(v[0][1].header("x-mesh-attempt") == "2" for v in seen.values())
    assert 5 <= retried <= 8, f"{retried} requests were retried (5 refusals eject)"
    row = m.endpoint_row("refuse", sc.address(3))
    assert (row.get("health"), row.get("ejections")) == ("ejected", 1), row
    assert m.wait_metric("mesh_outlier_ejections_total", 1, service="refuse") == 1
    ejected = m.wait_metric("mesh_upstream_endpoints", 1, service="refuse", health="ejected")
    assert ejected == 1
    assert m.metric("mesh_upstream_endpoints", service="refuse", health="healthy") == 2


@netns
def test_half_503_endpoint_ejected_at_threshold_then_readmitted_by_one_probe(m: Mesh) -> None:
    bad = m.endpoints["flaky-bad"]
    k = sc.CONSECUTIVE
    i = 0
    # Until the endpoint's own answers end in k consecutive 503s it stays healthy: a
    # success in between resets the count.
    while bad.answered[-k:] != [503] * k:
        assert i < 400, f"no run of {k} 503s in {bad.answered}"
        r = m.once(vip(51), PORT, tagged("flaky")(i))
        want = bad.answered[-1] if r.served_by == "flaky-bad" else 200
        assert r.status == want, (r.status, r.served_by)
        i += 1
        if bad.answered[-k:] != [503] * k:
            assert health(m, "flaky", 13) == "healthy", (i, bad.answered)
    assert wait_health(m, "flaky", 13, "ejected") == "ejected"
    assert bad.answered.count(503) > k, "no success ever reset the count: seed too kind"
    ejected_at = bad.requests[-1].at  # the ejecting 503 arrived then; ejection came after
    count = len(bad.requests)
    bad.mode = Mode(delay_ms=sc.PROBE_DELAY_MS)  # recovered, and slow enough to watch

    during = m.load(vip(51), PORT, 15, 3, tagged("flaky-out"))
    assert len(during) == 15 and not failures(during), failures(during)[:5]
    assert len(bad.requests) == count, "an ejected endpoint got traffic"
    if time.monotonic() < ejected_at + 0.9 * sc.EJECTION_S:
        assert health(m, "flaky", 13) == "ejected"

    time.sleep(max(0.0, ejected_at + sc.EJECTION_S + 0.05 - time.monotonic()))
    burst = m.load(vip(51), PORT, 30, 6, tagged("flaky-probe"))
    assert len(burst) == 30 and not failures(burst), failures(burst)[:5]
    assert len(bad.requests) > count, "not probed once the ejection time was over"
    probe = bad.requests[count]
    assert probe.at >= ejected_at + sc.EJECTION_S, "probed before the ejection time"
    outstanding = [s for s in bad.requests[count:] if s.at < probe.at + sc.PROBE_DELAY_MS / 1e3]
    assert len(outstanding) == 1, "more than one request while the probe was out"
    bad.mode = Mode()
    assert wait_health(m, "flaky", 13, "healthy") == "healthy"
    after = len(bad.requests)
    back = m.load(vip(51), PORT, 30, 1, tagged("flaky-back"))
    assert len(back) == 30 and not failures(back), failures(back)[:5]
    assert len(bad.requests) - after >= 8, "readmitted, yet it gets no share of round robin"


@netns
@pytest.mark.parametrize(
    "headers",
    [
        {"x_mesh_timeout_ms": "50"},
        {"grpc_timeout": "50m"},
        {"x_mesh_timeout_ms": "5000", "grpc_timeout": "50m"},  # the earliest wins
    ],
    ids=["mesh", "grpc", "min"],
)
def test_50ms_deadline_to_a_200ms_endpoint_is_504_dl_after_one_attempt(
    m: Mesh, headers: dict[str, str]
) -> None:
    tag = "dl50" + "".join(sorted(k[0] for k in headers)) + str(len(headers))
    before = flag_count(m, {"DL"}, "504")
    result = m.once(vip(52), PORT, tagged(tag, **headers)(0))
    assert result.status == 504 and result.served_by == ""
    assert 0.045 <= result.elapsed <= 0.15, f"504 after {result.elapsed:.3f}s, deadline 50ms"
    time.sleep(0.35)  # a retry (or a late first try) would have reached an endpoint by now
    seen = seen_by_id([m.endpoints["deadline-a"], m.endpoints["deadline-b"]], f"{tag}-")
    attempts = seen.get(f"{tag}-0", [])
    assert len(attempts) == 1, f"{len(attempts)} attempts reached the endpoints"
    s = attempts[0][1]
    assert s.header("x-mesh-attempt") == "1"
    budget = int(s.header("x-mesh-timeout-ms") or "0")
    assert 0 < budget <= 50, f"x-mesh-timeout-ms upstream: {budget} (remaining of 50)"
    assert wait_flag(m, {"DL"}, "504", before + 1) == before + 1 or flag_evidence(
        m, before, {"DL"}, "504", f"/{tag}/0"
    ), "no DL flag in metrics or access log"


@netns
def test_breaker_max_requests_10_and_50_concurrent_slow_requests_40_get_503_uo(m: Mesh) -> None:
    server = m.endpoints["breaker"]
    count = len(server.requests)
    before = flag_count(m, {"UO"}, "503")
    results = m.load(vip(53), PORT, 50, 50, tagged("cb50"), timeout=30)
    assert len(results) == 50
    served = [r for r in results if r.status == 200]
    rejected = [r for r in results if r.status == 503]
    broken = [f for f in failures(results) if f[1] not in (200, 503)]
    assert (len(served), len(rejected)) == (10, 40), (Counter(r.status for r in results), broken)
    assert all(r.served_by == "" for r in rejected)  # the proxy's own reply
    slowest = max(r.elapsed for r in rejected)
    assert slowest < 0.5, f"a rejection took {slowest:.3f}s: not at once"
    assert all(r.elapsed >= sc.BREAKER_DELAY_MS / 1e3 * 0.95 for r in served)
    assert len(server.requests) - count == 10, "overflowed requests reached the endpoint"
    assert wait_flag(m, {"UO"}, "503", before + 40) == before + 40


# -- what to build ----------------------------------------------------------------------


@netns
def test_retries_go_to_untried_endpoints_numbered_with_jittered_backoff(m: Mesh) -> None:
    """Three always-503 endpoints, 2 retries: each request visits all three, once each,
    as attempts 1, 2, 3, after backoffs drawn from [0, 25 ms) and [0, 75 ms)."""
    names = ["retry-a", "retry-b", "retry-c"]
    results = m.load(vip(54), PORT, 30, 3, tagged("rt"))
    assert len(results) == 30 and not failures(results, 503), failures(results, 503)[:5]
    assert all(r.served_by in names for r in results)  # the last endpoint's own 503
    seen = seen_by_id([m.endpoints[n] for n in names], "rt-")
    assert len(seen) == 30
    gaps: list[list[float]] = [[], []]
    for i, visits in seen.items():
        assert sorted(name for name, _ in visits) == names, f"{i}: {visits}"
        by_attempt = sorted(visits, key=lambda v: int(v[1].header("x-mesh-attempt") or "0"))
        assert [v[1].header("x-mesh-attempt") for v in by_attempt] == ["1", "2", "3"]
        at = [v[1].at for v in by_attempt]
        gaps[0].append(at[1] - at[0])
        gaps[1].append(at[2] - at[1])
    slack = 0.1  # the proxy's own work between attempts on a busy 2-core machine
    assert max(gaps[0]) < 0.025 + slack and max(gaps[1]) < 0.075 + slack, gaps
    # Jitter: some retries leave almost at once, others most of the 25 ms later.
    assert min(gaps[0]) < 0.010 and max(gaps[0]) - min(gaps[0]) > 0.008, gaps[0]
    assert statistics.mean(gaps[1]) > statistics.mean(gaps[0]) + 0.01, "backoff did not grow"


@netns
def test_never_more_than_max_ejection_percent_but_at_least_one(m: Mesh) -> None:
    """Two of three endpoints always fail; max_ejection_percent 10 allows 0.3 of an
    endpoint: one is ejected all the same, the other keeps its traffic."""
    first = m.load(vip(55), PORT, 30, 1, tagged("cap"))
    assert len(first) == 30
    rows = {r["address"]: r["health"] for r in m.clusters_of("capped")}
    assert Counter(rows.values()) == Counter({"healthy": 2, "ejected": 1}), rows
    assert rows[sc.address(53)] == "healthy"
    still = next(n for n in ("cap-bad-a", "cap-bad-b") if rows[m.address_of(n)] == "healthy")
    count = len(m.endpoints[still].requests)
    again = m.load(vip(55), PORT, 20, 1, tagged("cap-again"))
    assert Counter(r.status for r in again) == Counter({200: 10, 503: 10}), again
    assert len(m.endpoints[still].requests) - count == 10
    assert Counter(r["health"] for r in m.clusters_of("capped"))["ejected"] == 1


@netns
def test_panic_mode_routes_to_ejected_endpoints_when_too_few_are_healthy(m: Mesh) -> None:
    """Two of three endpoints ejected (max_ejection_percent 100): a third healthy is
    under the 50 % panic threshold, so traffic goes to all three again."""
    bad = [m.endpoints["panic-a"], m.endpoints["panic-b"]]
    m.load(vip(56), PORT, 12, 1, tagged("panic"))
    rows = {r["address"]: r["health"] for r in m.clusters_of("panicking")}
    assert [rows[sc.address(n)] for n in (61, 62, 63)] == ["ejected", "ejected", "healthy"]
    for e in bad:
        e.mode = Mode()  # recovered, but still ejected for 30 s
    counts = [len(e.requests) for e in bad]
    results = m.load(vip(56), PORT, 30, 1, tagged("panic-on"))
    assert len(results) == 30 and not failures(results), failures(results)[:5]
    got = [len(e.requests) - c for e, c in zip(bad, counts, strict=True)]
    assert all(g >= 5 for g in got), f"ejected endpoints got {got} of 30: no panic routing"
    rows = {r["address"]: r["health"] for r in m.clusters_of("panicking")}
    assert rows[sc.address(61)] == rows[sc.address(62)] == "ejected", rows


@netns
@pytest.mark.parametrize("size", [sc.REPLAY_LIMIT, sc.REPLAY_LIMIT + 1], ids=["64KiB", "over"])
def test_body_up_to_64kib_is_replayed_larger_is_not_retried(m: Mesh, size: int) -> None:
    body = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    digest = hashlib.sha256(body).hexdigest()
    tag = f"replay{size}"

    def build(i: int) -> Req:
        return Req("PUT", f"/{tag}/{i}", (("x-test-id", f"{tag}-{i}"),), body)

    results = m.load(vip(57), PORT, 6, 1, build)
    assert len(results) == 6
    reset_ids = {i for i in m.endpoints["replay-reset"].ids() if i.startswith(f"{tag}-")}
    ok = {
        s.header("x-test-id"): s
        for s in m.endpoints["replay-ok"].requests
        if (s.header("x-test-id") or "").startswith(f"{tag}-")
    }
    assert reset_ids, "no request reached the resetting endpoint"
    by_id = {f"{tag}-{r.index}": r for r in results}
    for i in reset_ids:
        if size <= sc.REPLAY_LIMIT:
            assert by_id[i].status == 200 and i in ok, f"{i} was not replayed"
            assert (ok[i].body_len, ok[i].body_sha256) == (size, digest)
            assert ok[i].header("x-mesh-attempt") == "2"
        else:
            assert by_id[i].status == 502 and i not in ok, f"{i}: a streamed body was retried"
    assert all(by_id[i].status == 200 for i in by_id if i not in reset_ids)


# -- found on the way -------------------------------------------------------------------


@netns
def test_keep_alive_connection_survives_a_response_slower_than_the_client_watch(
    codec: str,
) -> None:
    """A response slower than watch_client_after (1 s), then the next request on the
    same client connection. Own mesh: the failure is a Traceback in the proxy's log."""
    with mesh("pa", sc.CONFIG, sc.ENDPOINTS, codec=codec, refusing=sc.REFUSING) as topo:

        async def two() -> list[int]:
            conn = Client(topo.pod.name, vip(53), PORT)
            try:
                slow = await conn.result(0, Req(headers=(("x-test-delay-ms", "1200"),)))
                fast = await conn.result(1, Req(headers=(("x-test-delay-ms", "0"),)))
            finally:
                conn.close()
            return [slow.status, fast.status]

        assert topo.run(two()) == [200, 200]
