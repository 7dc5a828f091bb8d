"""A scripted mix through the real sidecar: /metrics must hold exactly what was sent.

The mix (``tests.support.scripted_mix``): five services behind the pod's sidecar, each
answering with bodies of known size, plus opaque TCP. Counts, sums and histogram
counts per label set must be exact, with one process and with ``--workers 2`` (where
requests spread over the workers and the endpoint gauges are per worker).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.support import netns as nt
from tests.support import sidecar as capture
from tests.support.scripted_mix import (
    DB_DOWN,
    DB_PORT,
    DB_UP,
    FAIL_BODY,
    OK_BODY,
    OPAQUE_DOWN,
    OPAQUE_PORT,
    OPAQUE_UP,
    POST_OK,
    PUT_FLAKY,
    access_log,
    http_labels,
    mix_mesh,
    request,
    series,
    tcp_exchange,
    tcp_labels,
    vip,
    wait,
    wait_logged,
)

pytestmark = [pytest.mark.netns, pytest.mark.skipif(not nt.is_root(), reason="needs root")]


def ejecting_until_every_worker_saw_it(ns: str, proxy: capture.Proxy, workers: int) -> int:
    """Requests to ``ejecting`` until each worker served >= 2 (its first ejects, the rest
    overflow the cap); the kernel spreads connections, so the number is not fixed."""
    sent = 0
    while True:
        assert request(ns, 4) == (503, FAIL_BODY)
        sent += 1
        wait_logged(proxy, "ejecting", sent)
        per_worker: dict[int, int] = {}
        for e in access_log(proxy):
            if e.get("upstream_cluster") == "ejecting":
                per_worker[e["worker"]] = per_worker.get(e["worker"], 0) + 1
        if len(per_worker) == workers and min(per_worker.values()) >= 2:
            return sent
        assert sent < 40, f"connections never reached all {workers} workers: {per_worker}"


def send_mix(link: nt.Link, proxy: capture.Proxy, workers: int) -> int:
    """The whole mix; returns how many requests went to ``ejecting``."""
    pod = link.a.name
    assert [request(pod, 1) for _ in range(4)] == [(200, OK_BODY)] * 4
    assert [request(pod, 1, "POST", POST_OK) for _ in range(3)] == [(200, OK_BODY)] * 3
    assert [request(pod, 2) for _ in range(3)] == [(503, FAIL_BODY)] * 3
    assert [request(pod, 3) for _ in range(2)] == [(200, OK_BODY)] * 2
    # PUT: idempotent, so retried on 503 with its body replayed (a POST would not be)
    assert [request(pod, 3, "PUT", PUT_FLAKY) for _ in range(2)] == [(200, OK_BODY)] * 2
    assert [tcp_exchange(pod, vip(5), DB_PORT, DB_UP) for _ in range(3)] == [DB_DOWN] * 3
    opaque = [tcp_exchange(pod, link.b4, OPAQUE_PORT, OPAQUE_UP) for _ in range(2)]
    assert opaque == [OPAQUE_DOWN] * 2
    return ejecting_until_every_worker_saw_it(pod, proxy, workers)


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_scripted_mix_gives_exact_metrics(tmp_path: Path, workers: int, codec: str) -> None:
    with mix_mesh(tmp_path, "--workers", str(workers), "--http-codec", codec) as (link, proxy):
        ejecting = send_mix(link, proxy, workers)
        closed = "istio_tcp_connections_closed_total"
        wait(lambda: proxy.total(closed) >= 5, "5 closed tcp connections")
        # ejections and endpoint gauges are sampled once a second per worker
        eject = "mesh_outlier_ejections_total"
        wait(lambda: proxy.total(eject) >= workers, f"{workers} ejections")
        wait(lambda: proxy.total("mesh_upstream_endpoints", health="ejected") >= workers,
             "the ejected endpoint in every worker's gauge")  # fmt: skip
        time.sleep(1.2)  # one more sampling round: nothing more may arrive
        got = {
            name: series(proxy, name)
            for name in (
                "istio_requests_total", "istio_request_duration_milliseconds_count",
                "istio_request_bytes_sum", "istio_request_bytes_count",
                "istio_response_bytes_sum", "mesh_upstream_retries_total", eject,
                "mesh_upstream_endpoints", "istio_tcp_connections_opened_total", closed,
                "istio_tcp_received_bytes_total", "istio_tcp_sent_bytes_total",
                "mesh_protocol_detect_total",
            )
        }  # fmt: skip
        log = access_log(proxy)
    ok, fail, flaky = http_labels("ok", 200), http_labels("fail", 503), http_labels("flaky", 200)
    shed = http_labels("ejecting", 503)
    requests = {ok: 7.0, fail: 3.0, flaky: 4.0, shed: float(ejecting)}
    assert got["istio_requests_total"] == requests
    assert got["istio_request_duration_milliseconds_count"] == requests
    assert got["istio_request_bytes_count"] == requests
    assert got["istio_request_bytes_sum"] == {ok: 3.0 * POST_OK, flaky: 2.0 * PUT_FLAKY}
    assert got["istio_response_bytes_sum"] == {
        ok: 7.0 * OK_BODY, fail: 3.0 * FAIL_BODY, flaky: 4.0 * OK_BODY,
        shed: ejecting * FAIL_BODY,
    }  # fmt: skip
    assert got["mesh_upstream_retries_total"] == {(("service", "flaky"),): 4.0}
    # each worker ejected one of the two endpoints once; the cap kept the other
    assert got[eject] == {(("service", "ejecting"),): float(workers)}
    healthy = {"ok": 1, "fail": 1, "flaky": 2, "ejecting": 1, "db": 1}
    gauges = {
        (("health", "healthy"), ("service", s)): float(n * workers) for s, n in healthy.items()
    }
    gauges[(("health", "ejected"), ("service", "ejecting"))] = float(workers)
    assert got["mesh_upstream_endpoints"] == gauges
    db, opaque = tcp_labels("db", "v2"), tcp_labels("PassthroughCluster", "unknown")
    assert got["istio_tcp_connections_opened_total"] == {db: 3.0, opaque: 2.0}
    assert got[closed] == {db: 3.0, opaque: 2.0}
    assert got["istio_tcp_received_bytes_total"] == {db: 3.0 * DB_UP, opaque: 2.0 * OPAQUE_UP}
    assert got["istio_tcp_sent_bytes_total"] == {db: 3.0 * DB_DOWN, opaque: 2.0 * OPAQUE_DOWN}
    http_conns = 7 + 3 + 4 + ejecting  # to services declared http: not sniffed
    assert got["mesh_protocol_detect_total"] == {
        (("direction", "outbound"), ("result", "declared")): float(http_conns) + 3.0,  # + db
        (("direction", "outbound"), ("result", "opaque")): 2.0,
    }
    attempts = sorted(e["attempts"] for e in log if e.get("upstream_cluster") == "flaky")
    assert attempts == [2, 2, 2, 2]
    assert len({e["worker"] for e in log}) == workers
