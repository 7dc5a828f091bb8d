"""The hot-path shortcuts say exactly what the slow paths they replace said.

The access log line is built from a template (compared byte for byte with
``json.dumps`` of the entry dict, for hostile strings too), histograms find their
bucket by bisection (compared with ``Histogram.observe`` on every boundary), and
circuit breakers key their counters by identity.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import random

import pytest
from prometheus_client import CollectorRegistry

from proxy.core.flags import Flag
from proxy.http.model import RequestHead
from proxy.l4.conn import Direction, Intercepted
from proxy.observe import Metrics, Observer, Workload
from proxy.observe.accesslog import AccessLog
from proxy.observe.logline import http_entry, http_line, milliseconds
from proxy.observe.tracecontext import SpanContext
from proxy.policy.breaker import BreakerLimits, Resource
from proxy.policy.breaker_counts import CircuitBreakers
from tests.support.telemetry import record

ME = Workload("productpage", "v2", "shop", "productpage-v2-6b746f74dc-9stvs")
HOSTILE = [
    '/a"b\\c',  # a quote and a backslash
    "/caf\u00e9/\u65e5\u672c/\U0001f600",  # Latin-1, CJK, astral
    "/ctl\x00\x01\x1f\x7f\t\n\r",  # control characters
    "/\u2028\u2029</script>",  # line separators survive in JSON strings
    "",
]


def _dumped(record_: object, service: str, span: SpanContext | None) -> bytes:
    entry = {"time": "2026-11-29T19:00:00.123Z", **http_entry(record_, service, span, os.getpid())}  # type: ignore[arg-type]
    return json.dumps(entry, separators=(",", ":")).encode() + b"\n"


@pytest.mark.parametrize("text", HOSTILE)
def test_log_line_is_byte_for_byte_json_dumps_for_hostile_strings(text: str) -> None:
    span = SpanContext("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", None, True, False)
    rec = dataclasses.replace(
        record(endpoint=("fd00::5", 9080), peer=("fd77::2", 41000), attempts=3),
        path=text, authority=f"{text}:80", method=f"G{text}", request_id=text,
        http_version="", flag=Flag.UPSTREAM_RESET, upstream_latency=None, upgraded=True,
    )  # fmt: skip
    line = http_line("2026-11-29T19:00:00.123Z", rec, f"svc{text}", span, os.getpid())
    assert line == _dumped(rec, f"svc{text}", span)
    parsed = json.loads(line)
    assert (parsed["path"], parsed["authority"]) == (text, f"{text}:80")
    assert parsed["upstream_ms"] is None and parsed["upgraded"] is True


def test_log_line_matches_for_an_ordinary_request_without_a_span() -> None:
    rec = record(endpoint=None, duration=0.0123456, rx=0)
    line = http_line("2026-11-29T19:00:00.123Z", rec, "reviews", None, os.getpid())
    assert line == _dumped(rec, "reviews", None)
    parsed = json.loads(line)
    assert parsed["duration_ms"] == 12.346 and parsed["upstream_ms"] == 6.173
    assert parsed["trace_id"] is None and parsed["upstream"] == "-"


def test_observer_writes_the_template_line_to_the_real_access_log() -> None:
    read, write = os.pipe()

    async def run() -> bytes:
        log = AccessLog(write)
        obs = Observer(
            ME,
            Metrics(CollectorRegistry()),
            access_log=log,
            rng=random.Random(1),
            clock=lambda: 1_700_000_000.25,  # the line carries when the request finished
        )
        head = RequestHead("GET", '/q"\\\u00e9', "reviews:9080", "1.1", "req-1", ())
        token = obs.start(
            Intercepted(Direction.OUTBOUND, ("10.0.0.9", 1), ("10.0.0.1", 80), 4), head
        )
        token.done(dataclasses.replace(record(), path=head.path))
        obs.flush()  # inside a loop, done() keeps the record for its batch
        log.close()
        return os.read(read, 65536)

    try:
        data = asyncio.run(run())
    finally:
        os.close(read)
        os.close(write)
    entry = json.loads(data)
    assert entry["time"] == "2023-11-14T22:13:20.250Z"
    assert entry["path"] == '/q"\\\u00e9' and entry["status"] == 200
    assert list(entry)[:3] == ["time", "direction", "protocol"]


def test_breakers_keyed_by_identity_count_and_refuse_per_resource() -> None:
    breakers = CircuitBreakers(BreakerLimits(max_retries=1, max_requests=2))
    assert {Resource.RETRIES: 1}[Resource("max_retries")] == 1  # lookup by value still works
    assert breakers.try_acquire(Resource.RETRIES)
    assert not breakers.try_acquire(Resource.RETRIES)
    assert breakers.try_acquire(Resource.REQUESTS) and breakers.try_acquire(Resource.REQUESTS)
    assert not breakers.try_acquire(Resource.REQUESTS)
    assert (breakers.overflows(Resource.RETRIES), breakers.overflows(Resource.REQUESTS)) == (1, 1)
    breakers.release(Resource.RETRIES)
    assert breakers.in_use(Resource.RETRIES) == 0 and breakers.in_use(Resource.REQUESTS) == 2


def _samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in registry.collect()
        for s in family.samples
        if not s.name.endswith("_created")
    }


def test_request_cells_land_where_the_public_api_puts_every_boundary_value() -> None:
    from proxy.observe.metrics import BYTES_BUCKETS, DURATION_BUCKETS_MS

    fast_registry, public_registry = CollectorRegistry(), CollectorRegistry()
    fast, public = Metrics(fast_registry), Metrics(public_registry)
    values = sorted(
        {0.0, 1e9}
        | {b + d for b in (*DURATION_BUCKETS_MS, *BYTES_BUCKETS) for d in (-0.001, 0.0, 0.001)}
    )
    for i, value in enumerate(values):
        labels = ("outbound", "a", "svc", "v1", "200" if i % 3 else "503", "-", "http")
        rx, tx = int(value), int(values[-1 - i])
        fast.request(labels, value, rx, tx)
        public.requests.labels(*labels).inc()
        public.duration.labels(*labels).observe(value)
        public.request_bytes.labels(*labels).observe(rx)
        public.response_bytes.labels(*labels).observe(tx)
    pushed_nothing = _samples(fast_registry)
    fast.push()
    got, want = _samples(fast_registry), _samples(public_registry)
    assert got == want and pushed_nothing != want  # counted once pushed, not before
    fast.push()  # a second push adds nothing
    fast.request(("outbound", "a", "svc", "v1", "200", "-", "http"), 7.0, 1, 1)
    fast.push()
    again = _samples(fast_registry)
    assert (
        sum(v for (name, _), v in again.items() if name == "istio_requests_total")
        == len(values) + 1
    )
    assert sum(v for (name, _), v in got.items() if name == "istio_requests_total") == len(values)


def test_milliseconds_prints_what_repr_of_round_prints() -> None:
    rng = random.Random(7)
    values = [0.0, -0.0, 1e-7, 0.0005, 0.0015, 0.0025, 0.1, 0.2, 0.3, 1.0, 2.5e-4, 12.5, 1e9, 1e13]
    values += [rng.uniform(0, 0.01) for _ in range(20000)]
    values += [rng.uniform(0, 100) for _ in range(20000)]
    values += [rng.randrange(0, 10**7) / 1e6 for _ in range(20000)]  # exact microseconds
    values += [rng.randrange(0, 10**6) / 2e6 + 5e-7 for _ in range(5000)]  # half-way points
    for seconds in values:
        assert milliseconds(seconds) == repr(round(seconds * 1000.0, 3)), seconds
