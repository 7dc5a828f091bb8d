"""Observer unit tests: label sets, access log entries, Zipkin v2 span shape."""

from __future__ import annotations

import json
import random
from typing import Any

from prometheus_client import CollectorRegistry

from proxy.core.flags import Flag
from proxy.http.model import RequestHead
from proxy.l4.conn import Direction, Intercepted
from proxy.observe import Metrics, Observer, Workload
from proxy.observe.logline import entry_line, hostport, http_entry, tcp_entry
from proxy.observe.tracecontext import SpanContext
from proxy.observe.zipkin import build_span
from tests.support.telemetry import check_zipkin_v2, finish, record, samples

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"
ME = Workload("productpage", "v2", "shop", "productpage-v2-6b746f74dc-9stvs")


class _Collect:
    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []

    def submit(self, span: dict[str, Any]) -> None:
        self.spans.append(span)


def _observer(
    registry: CollectorRegistry, rate: float = 1.0
) -> tuple[Observer, list[dict[str, Any]], _Collect]:
    lines: list[dict[str, Any]] = []
    spans = _Collect()
    obs = Observer(
        ME, Metrics(registry), access_log=lines.append, sample_rate=rate, rng=random.Random(5),
        clock=lambda: 1_700_000_000.25,
    )  # fmt: skip
    obs.exporter = spans  # type: ignore[assignment]  # duck-typed collector for the test
    return obs, lines, spans


def _head(*headers: tuple[bytes, bytes]) -> RequestHead:
    return RequestHead("GET", "/api/items/123", "reviews:9080", "1.1", "req-1", headers)


def _conn(direction: Direction) -> Intercepted:
    return Intercepted(direction, ("10.0.0.9", 40000), ("10.96.0.20", 9080), 4)


def test_label_sets_per_direction_and_bounded_service_names() -> None:
    reg = CollectorRegistry()
    obs, _, _ = _observer(reg)
    out = _conn(Direction.OUTBOUND)
    for rec in (
        record(),
        record(status=503, flag=Flag.UPSTREAM_CONNECT_FAILURE),
        record(service="10.1.2.3:8080", version=""),  # passthrough: never an address label
        record(Direction.INBOUND, service="", version=""),
    ):
        obs.start(out, _head()).done(rec)
    got = samples(reg, "istio_requests_total")
    base = {"request_protocol": "http", "response_flags": "-", "response_code": "200"}

    def key(**labels: str) -> tuple[tuple[str, str], ...]:
        return tuple(sorted({**base, **labels}.items()))

    assert got == {
        key(reporter="source", source_workload="productpage",
            destination_service_name="reviews", destination_version="v1"): 1.0,
        key(reporter="source", source_workload="productpage", destination_service_name="reviews",
            destination_version="v1", response_code="503", response_flags="UF"): 1.0,
        key(reporter="source", source_workload="productpage",
            destination_service_name="PassthroughCluster", destination_version="unknown"): 1.0,
        # inbound: the caller is unknown without mTLS, the destination is this workload
        key(reporter="destination", source_workload="unknown",
            destination_service_name="productpage", destination_version="v2"): 1.0,
    }  # fmt: skip
    durations = samples(reg, "istio_request_duration_milliseconds_sum")
    assert sum(durations.values()) == 4 * 12.0
    le_5 = samples(reg, "istio_request_duration_milliseconds_bucket")
    assert {dict(k)["le"] for k in le_5} >= {"0.5", "10.0", "25.0", "3.6e+06", "+Inf"}
    assert sum(samples(reg, "istio_response_bytes_sum").values()) == 800.0
    assert sum(samples(reg, "istio_request_bytes_sum").values()) == 40.0


def test_access_log_entry_has_the_request_and_trace_and_brackets_ipv6() -> None:
    reg = CollectorRegistry()
    obs, lines, _ = _observer(reg)
    token = obs.start(
        _conn(Direction.OUTBOUND), _head((b"traceparent", f"00-{TRACE}-{SPAN}-01".encode()))
    )
    token.done(record(endpoint=("fd00::5", 9080), attempts=2, status=503, flag=Flag.UPSTREAM_RESET))
    (entry,) = lines
    json.dumps(entry)  # serialisable as is
    assert entry["upstream"] == "[fd00::5]:9080"
    assert entry["trace_id"] == TRACE and entry["span_id"] != SPAN
    expected = {
        "direction": "outbound", "method": "GET", "authority": "reviews:9080",
        "path": "/api/items/123?x=1", "status": 503, "response_flags": "UR", "attempts": 2,
        "duration_ms": 12.0, "bytes_received": 10, "bytes_sent": 200, "request_id": "req-1",
        "protocol": "HTTP/1.1", "upstream_cluster": "reviews", "downstream_peer": "10.0.0.9:40000",
    }  # fmt: skip
    assert {k: entry[k] for k in expected} == expected


def test_request_refused_before_routing_is_counted_logged_and_traced() -> None:
    reg = CollectorRegistry()
    obs, lines, spans = _observer(reg)  # every request sampled
    finish(obs, record(status=400, flag=Flag.DOWNSTREAM_PROTOCOL_ERROR, service=""))
    (entry,) = lines
    assert (entry["status"], entry["response_flags"]) == (400, "DPE")
    assert entry["trace_id"] is not None and entry["upstream_cluster"] == "PassthroughCluster"
    (span,) = spans.spans
    tags = span["tags"]
    assert (tags["http.status_code"], tags["response_flags"]) == ("400", "DPE")
    assert "error" not in tags  # a client's mistake, not this hop's
    assert list(samples(reg, "istio_requests_total").values()) == [1.0]


def test_client_span_shape_and_parent() -> None:
    ctx = SpanContext(TRACE, "a1b2c3d4e5f60718", SPAN, True, False)
    span = build_span(ctx, record(attempts=3), ME, "reviews", 1_700_000_000.25)
    check_zipkin_v2(span)
    assert (span["traceId"], span["id"], span["parentId"], span["kind"]) == (
        TRACE, "a1b2c3d4e5f60718", SPAN, "CLIENT",
    )  # fmt: skip
    assert span["timestamp"] == 1_700_000_000_250_000 and span["duration"] == 12_000
    assert span["localEndpoint"] == {"serviceName": "productpage.shop"}
    assert span["remoteEndpoint"] == {"serviceName": "reviews", "ipv4": "10.244.1.5", "port": 9080}
    assert span["name"] == "reviews:9080/*"
    tags = span["tags"]
    assert (tags["http.status_code"], tags["mesh.attempts"], tags["guid:x-request-id"]) == (
        "200", "3", "req-1",
    )  # fmt: skip
    assert "error" not in tags


def test_server_span_for_inbound_names_the_caller_and_marks_errors() -> None:
    ctx = SpanContext(TRACE, "a1b2c3d4e5f60718", None, True, False)
    rec = record(Direction.INBOUND, status=503, flag=Flag.UPSTREAM_CONNECT_FAILURE,
                 peer=("fd77::2", 41000), duration=0.0)  # fmt: skip
    span = build_span(ctx, rec, ME, "productpage", 1_700_000_000.0)
    check_zipkin_v2(span)
    assert span["kind"] == "SERVER" and "parentId" not in span
    assert span["remoteEndpoint"] == {"ipv6": "fd77::2", "port": 41000}
    assert span["duration"] == 1  # never 0: Zipkin v2 wants at least 1 µs
    assert (span["tags"]["error"], span["tags"]["response_flags"]) == ("true", "UF")


def test_sampled_requests_go_to_the_exporter_and_unsampled_do_not() -> None:
    reg = CollectorRegistry()
    obs, _, spans = _observer(reg, rate=0.0)
    conn = _conn(Direction.OUTBOUND)
    sampled = obs.start(conn, _head((b"TraceParent", f"00-{TRACE}-{SPAN}-01".encode())))
    not_sampled = obs.start(conn, _head((b"traceparent", f"00-{TRACE}-{SPAN}-00".encode())))
    undecided = obs.start(conn, _head())  # rate 0: not sampled, yet propagated
    for token in (sampled, not_sampled, undecided):
        token.done(record())
    assert [s["parentId"] for s in spans.spans] == [SPAN]
    headers = dict(undecided.headers)
    assert headers[b"traceparent"].endswith(b"-00")


def test_hostport() -> None:
    assert hostport(("::1", 80)) == "[::1]:80"
    assert hostport(("10.0.0.1", 80)) == "10.0.0.1:80"
    assert hostport(None) == "-"


def test_tcp_and_http_lines_name_the_same_facts_alike() -> None:
    conn = Intercepted(Direction.INBOUND, ("fd77::2", 41000), ("fd00::20", 5432), 6)
    tcp = json.loads(
        entry_line(
            "2026-11-29T19:00:00.123Z",
            tcp_entry(conn, ("fd00::20", 5432), "db", 0.0125, 7, 9, Flag.UPSTREAM_RESET, None, 42),
        )
    )
    http = json.loads(
        entry_line("2026-11-29T19:00:00.123Z", http_entry(record(), "reviews", None, 42))
    )
    shared = {
        "time", "direction", "protocol", "upstream", "upstream_cluster", "response_flags",
        "duration_ms", "bytes_received", "bytes_sent", "downstream_peer", "original_dst", "worker",
    }  # fmt: skip
    assert set(tcp) & set(http) == shared
    assert set(tcp) - shared == {"error"}  # the rest are HTTP's own facts
    assert next(iter(tcp)) == next(iter(http)) == "time"
    assert tcp == {
        "time": "2026-11-29T19:00:00.123Z", "direction": "inbound",
        "downstream_peer": "[fd77::2]:41000", "original_dst": "[fd00::20]:5432",
        "upstream": "[fd00::20]:5432", "upstream_cluster": "db", "protocol": "tcp",
        "bytes_received": 7, "bytes_sent": 9, "response_flags": "UR", "duration_ms": 12.5,
        "error": None, "worker": 42,
    }  # fmt: skip
