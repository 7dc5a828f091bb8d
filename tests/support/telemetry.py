"""Shared pieces of the telemetry tests: records, a Zipkin v2 schema check, exposition,
and the Zipkin collector (the one test server keeping what is posted to it)."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import re
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from proxy.core.flags import Flag
from proxy.http.model import RequestHead, RequestRecord
from proxy.l4.conn import Direction, Intercepted
from tests.support.http_server import HttpServer, Mode

_HEX = re.compile(r"^[0-9a-f]+$")
SPAN_KEYS = {
    "traceId", "id", "parentId", "kind", "name", "timestamp", "duration",
    "localEndpoint", "remoteEndpoint", "tags", "annotations", "debug", "shared",
}  # fmt: skip
ENDPOINT_KEYS = {"serviceName", "ipv4", "ipv6", "port"}


def record(
    direction: Direction = Direction.OUTBOUND,
    *,
    status: int = 200,
    flag: Flag = Flag.NONE,
    service: str = "reviews",
    version: str = "v1",
    endpoint: tuple[str, int] | None = ("10.244.1.5", 9080),
    duration: float = 0.012,
    rx: int = 10,
    tx: int = 200,
    attempts: int = 1,
    request_id: str = "req-1",
    peer: tuple[str, int] = ("10.0.0.9", 40000),
) -> RequestRecord:
    conn = Intercepted(direction, peer, ("10.96.0.20", 9080), 4)
    return RequestRecord(
        conn=conn, request_id=request_id, method="GET", path="/api/items/123?x=1",
        authority="reviews:9080", http_version="1.1", status=status, flag=flag,
        service=service, version=version, endpoint=endpoint, bytes_received=rx,
        bytes_sent=tx, start=100.0, duration=duration, upstream_latency=duration / 2,
        attempts=attempts, upgraded=False,
    )  # fmt: skip


def check_zipkin_v2(span: dict[str, Any]) -> None:
    """The required fields and types of the Zipkin v2 span schema (zipkin2-api.yaml)."""
    assert set(span) <= SPAN_KEYS, set(span) - SPAN_KEYS
    assert isinstance(span["traceId"], str) and len(span["traceId"]) in (16, 32)
    assert _HEX.match(span["traceId"])
    assert isinstance(span["id"], str) and len(span["id"]) == 16 and _HEX.match(span["id"])
    if "parentId" in span:
        assert len(span["parentId"]) == 16 and _HEX.match(span["parentId"])
    assert span["kind"] in ("CLIENT", "SERVER", "PRODUCER", "CONSUMER")
    assert isinstance(span["name"], str) and span["name"]
    assert isinstance(span["timestamp"], int) and span["timestamp"] > 1_500_000_000_000_000
    assert isinstance(span["duration"], int) and span["duration"] >= 1
    for key in ("localEndpoint", "remoteEndpoint"):
        endpoint = span[key]
        assert isinstance(endpoint, dict) and set(endpoint) <= ENDPOINT_KEYS
        if "ipv4" in endpoint:
            assert ipaddress.ip_address(endpoint["ipv4"]).version == 4
        if "ipv6" in endpoint:
            assert ipaddress.ip_address(endpoint["ipv6"]).version == 6
        if "port" in endpoint:
            assert isinstance(endpoint["port"], int) and 0 < endpoint["port"] < 65536
    assert isinstance(span["localEndpoint"]["serviceName"], str)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in span["tags"].items())


def samples(registry: CollectorRegistry, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Every sample called ``name`` in the text exposition, by its sorted label set."""
    text = generate_latest(registry).decode()
    out: dict[tuple[tuple[str, str], ...], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                out[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def posted_spans(collector: HttpServer) -> list[dict[str, Any]]:
    """Every span POSTed to ``collector`` (an ``HttpServer`` with the ``collect`` reply),
    in arrival order; each POST must have gone to the Zipkin v2 path."""
    spans: list[dict[str, Any]] = []
    for seen in collector.requests:
        assert (seen.method, seen.target) == ("POST", "/api/v2/spans"), seen.raw_head
        spans += json.loads(seen.body)
    return spans


class Collector:
    """A Zipkin collector on 127.0.0.1: the one test server's ``collect`` reply (202 for
    every POST), or with ``hang`` every POST held unanswered for 30 s."""

    def __init__(self, hang: bool = False) -> None:
        self.server = HttpServer("zipkin", reply="collect", mode=Mode(30_000.0 if hang else 0.0))

    async def start(self) -> Collector:
        await self.server.start()
        return self

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def posts(self) -> int:
        return len(self.server.requests)

    @property
    def spans(self) -> list[dict[str, Any]]:
        return posted_spans(self.server)

    async def close(self) -> None:
        await self.server.close()


def piped(main: Callable[[int, int], Coroutine[Any, Any, bytes]]) -> bytes:
    """Run ``main(read_end, write_end)`` of a fresh pipe; both ends closed afterwards."""
    read, write = os.pipe()
    try:
        return asyncio.run(main(read, write))
    finally:
        os.close(read)
        os.close(write)


class _Starts(Protocol):
    def start(self, conn: Intercepted, head: RequestHead) -> Any: ...


def finish(observer: _Starts, rec: RequestRecord) -> None:
    """Start and finish one request on ``observer``, as the dispatcher does for a
    request the parser refused (its head is the record's)."""
    head = RequestHead(rec.method, rec.path, rec.authority, rec.http_version, rec.request_id, ())
    observer.start(rec.conn, head).done(rec)
