"""Telemetry through the real HTTP engine on 127.0.0.1: metrics, spans, access log.

``HttpProxy`` runs with a small dispatcher that calls the observer the way the mesh
dispatcher does (start → upstream headers on each attempt → done once).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import select
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

from prometheus_client import CollectorRegistry

from proxy.http import RequestHead, RequestRecord, Target, UpstreamPool
from proxy.l4.conn import Intercepted
from proxy.observe import AccessLog, CollectorUrl, Metrics, Observer, Workload, ZipkinExporter
from tests.support.engine_front import Plan, Planned, proxied, run
from tests.support.http_client import read_response
from tests.support.http_server import Upstream
from tests.support.telemetry import Collector, check_zipkin_v2, samples

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"
ME = Workload("productpage", "v1", "shop")


def _refused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def observing(
    observer: Observer, good: int
) -> Callable[[list[RequestRecord], UpstreamPool], Planned]:
    """Routes /down to a closed port (503 UF) and the rest to the upstream, with the
    observer's token held by each request's own ``Plan``."""
    bad = _refused_port()

    def make(records: list[RequestRecord], pool: UpstreamPool) -> Planned:
        def plan(conn: Intercepted, req: RequestHead) -> Plan:
            token = observer.start(conn, req)
            port = bad if req.path == "/down" else good
            headers = token.headers
            target = Target(("127.0.0.1", port), pool, set_headers=headers)
            return Plan(
                target,
                service="reviews",
                version="v1",
                on_done=token.done,
            )

        return Planned(records, plan)

    return make


@contextlib.asynccontextmanager
async def exporting(port: int, metrics: Metrics, **kw: Any) -> AsyncIterator[ZipkinExporter]:
    url = CollectorUrl.parse(f"http://127.0.0.1:{port}/api/v2/spans")
    exporter = ZipkinExporter(url, metrics, interval=0.05, timeout=0.5, **kw)
    task = asyncio.create_task(exporter.run())
    try:
        yield exporter
    finally:
        exporter.close()
        await asyncio.wait_for(task, 5)


async def _request(front: Any, raw: bytes) -> tuple[int, float]:
    loop = asyncio.get_running_loop()
    started = loop.time()
    reader, writer = await front.connect()
    writer.write(raw)
    resp = await read_response(reader)
    writer.close()
    await writer.wait_closed()
    return resp.status, loop.time() - started


def _get(path: str, *extra: str) -> bytes:
    return (
        "\r\n".join([f"GET {path} HTTP/1.1", "Host: reviews:9080", *extra]) + "\r\n\r\n"
    ).encode()


def _post(path: str, body: bytes) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: reviews\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )


def test_scripted_mix_gives_exact_counts_and_sums_per_label_set(codec: str) -> None:
    reg = CollectorRegistry()
    metrics = Metrics(reg)
    observer = Observer(ME, metrics, rng=random.Random(1))

    async def main() -> list[int]:
        upstream = await Upstream().start()
        statuses = []
        async with proxied(
            ("127.0.0.1", upstream.port),
            forwarder=observing(observer, upstream.port),
            codec=codec,
        ) as front:
            for raw in (
                [_get("/hello")] * 5 + [_get("/down")] * 3 + [_post("/echo", b"x" * 1000)] * 2
            ):
                statuses.append((await _request(front, raw))[0])
        observer.flush()  # what /metrics does before it renders
        await upstream.close()
        return statuses

    statuses = run(main())
    assert sorted(statuses) == [200] * 7 + [503] * 3
    labels = {
        "reporter": "source", "source_workload": "productpage",
        "destination_service_name": "reviews", "destination_version": "v1",
        "request_protocol": "http",
    }  # fmt: skip
    ok = tuple(sorted({**labels, "response_code": "200", "response_flags": "-"}.items()))
    uf = tuple(sorted({**labels, "response_code": "503", "response_flags": "UF"}.items()))
    assert samples(reg, "istio_requests_total") == {ok: 7.0, uf: 3.0}
    assert samples(reg, "istio_request_bytes_sum") == {ok: 2000.0, uf: 0.0}
    echo = len(f"1000 {'0' * 64}")  # "<size> <sha256 hex>"
    assert samples(reg, "istio_response_bytes_sum")[ok] == 5 * len(b"hello") + 2 * echo
    counts = samples(reg, "istio_request_duration_milliseconds_count")
    assert counts == {ok: 7.0, uf: 3.0}
    inf = samples(reg, "istio_request_duration_milliseconds_bucket")
    assert inf[tuple(sorted({**dict(ok), "le": "+Inf"}.items()))] == 7.0


def test_spans_reach_the_collector_and_the_upstream_sees_the_child_span(codec: str) -> None:
    reg = CollectorRegistry()
    metrics = Metrics(reg)
    observer = Observer(ME, metrics, sample_rate=0.0, rng=random.Random(2))

    async def main() -> tuple[Collector, Upstream]:
        collector, upstream = await Collector().start(), await Upstream().start()
        async with exporting(collector.port, metrics) as exporter:
            observer.exporter = exporter
            async with proxied(
                ("127.0.0.1", upstream.port),
                forwarder=observing(observer, upstream.port),
                codec=codec,
            ) as front:
                await _request(front, _get("/hello", f"traceparent: 00-{TRACE}-{SPAN}-01"))
                b3 = [f"X-B3-TraceId: {TRACE}", f"X-B3-SpanId: {SPAN}", "X-B3-Sampled: 1"]
                await _request(front, _get("/down", *b3))
                await _request(front, _get("/hello"))  # rate 0, no caller decision: no span
            for _ in range(100):
                if len(collector.spans) >= 2:
                    break
                await asyncio.sleep(0.02)
        await collector.close()
        await upstream.close()
        return collector, upstream

    collector, upstream = run(main())
    assert len(collector.spans) == 2
    for span in collector.spans:
        check_zipkin_v2(span)
    first, second = sorted(collector.spans, key=lambda s: s["tags"]["http.status_code"])
    assert (first["traceId"], first["parentId"], first["kind"]) == (TRACE, SPAN, "CLIENT")
    seen = upstream.requests[0].header(b"traceparent")
    assert seen == f"00-{TRACE}-{first['id']}-01".encode()  # the upstream's parent is our span
    assert first["tags"]["http.status_code"] == "200" and first["tags"]["mesh.attempts"] == "1"
    assert (second["traceId"], second["parentId"]) == (TRACE, SPAN)
    assert second["tags"]["http.status_code"] == "503" and second["tags"]["error"] == "true"
    assert second["tags"]["response_flags"] == "UF"
    assert (
        upstream.requests[1].header(
            b"traceparent",
        )
        is not None
    )
    assert upstream.requests[1].header(b"x-b3-traceid") is None  # W3C only in, W3C only out
    assert samples(reg, "mesh_tracing_spans_exported_total") == {(): 2.0}


def test_collector_down_or_hanging_costs_nothing_but_counters(codec: str) -> None:
    async def measure(collector_port: int, metrics: Metrics, upstream: Upstream) -> float:
        observer = Observer(ME, metrics, sample_rate=1.0, rng=random.Random(3))
        # A queue above the observer's batch: finished requests reach it 32 at a time.
        async with exporting(collector_port, metrics, max_queue=64, batch=4) as exporter:
            observer.exporter = exporter
            async with proxied(
                ("127.0.0.1", upstream.port),
                forwarder=observing(observer, upstream.port),
                codec=codec,
            ) as front:
                times = [(await _request(front, _get("/hello")))[1] for _ in range(40)]
            await asyncio.sleep(0.6)  # let the exporter's attempts time out
        return sorted(times)[len(times) // 2]

    regs = [CollectorRegistry() for _ in range(3)]

    async def main() -> tuple[float, float, float, int]:
        upstream = await Upstream().start()
        good, hanging = await Collector().start(), await Collector(hang=True).start()
        base = await measure(good.port, Metrics(regs[0]), upstream)
        down = await measure(_refused_port(), Metrics(regs[1]), upstream)
        slow = await measure(hanging.port, Metrics(regs[2]), upstream)
        for c in (good, hanging):
            await c.close()
        await upstream.close()
        return base, down, slow, hanging.posts

    base, down, slow, posts = run(main())
    # median request latency: generous bounds, only a blocking exporter would break them
    assert down < base * 3 + 0.02 and slow < base * 3 + 0.02, (base, down, slow)
    assert samples(regs[0], "mesh_tracing_spans_exported_total") == {(): 40.0}
    for reg in regs[1:]:
        dropped = samples(reg, "mesh_tracing_spans_dropped_total")
        failed = dropped.get((("reason", "export_failed"),), 0.0)
        full = dropped.get((("reason", "queue_full"),), 0.0)
        assert failed > 0 and failed + full == 40.0, dropped
        assert samples(reg, "mesh_tracing_spans_exported_total") == {(): 0.0}
    assert posts >= 1  # the hanging collector was tried, and timed out


def test_access_log_lines_match_the_requests(codec: str) -> None:
    r, w = os.pipe()
    reg = CollectorRegistry()

    async def main() -> bytes:
        log = AccessLog(w)
        observer = Observer(ME, Metrics(reg), access_log=log, rng=random.Random(4))
        upstream = await Upstream().start()
        async with proxied(
            ("127.0.0.1", upstream.port),
            forwarder=observing(observer, upstream.port),
            codec=codec,
        ) as front:
            await _request(
                front, _get("/hello", "x-request-id: abc-1", f"traceparent: 00-{TRACE}-{SPAN}-00")
            )
            await _request(front, _get("/down", "x-request-id: abc-2"))
        await upstream.close()
        await asyncio.sleep(0.5)  # the flush timer, not close(), delivers them
        data = b""
        while select.select([r], [], [], 0)[0]:
            data += os.read(r, 1 << 16)
        return data

    try:
        data = run(main())
    finally:
        os.close(r)
        os.close(w)
    first, second = (json.loads(line) for line in data.splitlines())
    assert (first["request_id"], first["status"], first["response_flags"]) == ("abc-1", 200, "-")
    assert first["trace_id"] == TRACE and first["path"] == "/hello" and first["attempts"] == 1
    assert first["upstream"].startswith("127.0.0.1:") and first["bytes_sent"] == 5
    assert (second["request_id"], second["status"], second["response_flags"]) == (
        "abc-2",
        503,
        "UF",
    )
    assert second["trace_id"] != TRACE and len(second["trace_id"]) == 32
    assert all(
        line["direction"] == "outbound" and line["time"].endswith("Z") for line in (first, second)
    )


def test_a_full_span_queue_drops_and_counts_instead_of_growing() -> None:
    reg = CollectorRegistry()
    url = CollectorUrl.parse("http://127.0.0.1:9/api/v2/spans")
    exporter = ZipkinExporter(url, Metrics(reg), max_queue=8, batch=100)
    for i in range(20):
        exporter.submit({"id": f"{i:016x}"})
    assert samples(reg, "mesh_tracing_spans_dropped_total") == {(("reason", "queue_full"),): 12.0}
