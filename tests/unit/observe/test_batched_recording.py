"""Finished requests are recorded in batches: by count, by time, and before a scrape."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os

import pytest
from prometheus_client import CollectorRegistry

from proxy.admin.httpmini import Request
from proxy.admin.telemetry_port import Readiness, telemetry_endpoints
from proxy.observe import AccessLog, Metrics, Observer, Workload
from proxy.observe.observer import BATCH, BATCH_AFTER
from tests.support.telemetry import finish, piped, record, samples

ME = Workload("productpage", "v2", "shop", "productpage-v2-6b746f74dc-9stvs")


def _total(reg: CollectorRegistry) -> float:
    return sum(samples(reg, "istio_requests_total").values())


def test_outside_a_loop_a_request_is_recorded_at_once() -> None:
    reg = CollectorRegistry()
    finish(Observer(ME, Metrics(reg)), record())
    assert _total(reg) == 1


def test_in_a_loop_requests_wait_for_a_full_batch_or_the_timer() -> None:
    reg = CollectorRegistry()
    observer = Observer(ME, Metrics(reg))

    async def main() -> list[float]:
        seen = []
        for _ in range(BATCH - 1):
            finish(observer, record())
        seen.append(_total(reg))  # kept: nothing recorded per request
        finish(observer, record())
        seen.append(_total(reg))  # the batch is full: recorded on the next pass
        await asyncio.sleep(0)
        seen.append(_total(reg))  # all of it together
        finish(observer, record())
        await asyncio.sleep(BATCH_AFTER * 2)
        seen.append(_total(reg))  # the last one, by the timer
        return seen

    assert asyncio.run(main()) == [0, 0, BATCH, BATCH + 1]


def test_the_response_that_fills_a_batch_leaves_before_the_batch_is_recorded() -> None:
    # The request's response is held in the outbox until the end of the loop pass;
    # a full batch's recording (metrics, log lines) must come after it, not before.
    from proxy.http.outbox import Outbox

    reg = CollectorRegistry()
    observer = Observer(ME, Metrics(reg))
    order: list[str] = []

    class Transport:
        def is_closing(self) -> bool:
            return False

        def write(self, data: bytes) -> None:
            order.append(f"response written, {_total(reg):.0f} recorded")

    async def main() -> None:
        outbox = Outbox(asyncio.get_running_loop())
        for _ in range(BATCH - 1):
            finish(observer, record())
        outbox.send(Transport(), b"HTTP/1.1 200 OK\r\n\r\n")  # type: ignore[arg-type]
        finish(observer, record())  # as HttpProxy does, once the response is queued
        await asyncio.sleep(0)
        order.append(f"after the pass, {_total(reg):.0f} recorded")

    asyncio.run(main())
    assert order == ["response written, 0 recorded", f"after the pass, {BATCH} recorded"]


def test_a_scrape_records_what_was_kept_first() -> None:
    reg = CollectorRegistry()
    observer = Observer(ME, Metrics(reg))
    endpoints = telemetry_endpoints(Readiness(), reg, observer.flush)

    async def main() -> bytes:
        for _ in range(3):
            finish(observer, record())
        reply = await endpoints.dispatch(Request("GET", "/metrics", "", b""))
        return reply.body

    body = asyncio.run(main()).decode()
    assert 'istio_requests_total{destination_service_name="reviews"' in body
    assert _total(reg) == 3


def test_one_record_that_fails_does_not_cost_the_others(caplog: pytest.LogCaptureFixture) -> None:
    reg = CollectorRegistry()
    observer = Observer(ME, Metrics(reg))
    broken = dataclasses.replace(record(request_id="broken"), conn=None)  # type: ignore[arg-type]

    async def main() -> None:
        finish(observer, record())
        finish(observer, broken)
        finish(observer, record())
        observer.flush()

    asyncio.run(main())
    assert _total(reg) == 2
    assert "could not record request broken" in caplog.text


def test_a_batched_request_keeps_the_time_it_finished_in_its_log_line() -> None:
    # Each request reads the clock when it starts (its span) and when it finishes.
    finished = iter([1_700_000_000.0, 1_700_000_000.1005, 1_700_000_000.15, 1_700_000_000.2005])

    async def main(read: int, write: int) -> bytes:
        log = AccessLog(write, clock=lambda: 1_700_000_009.0)  # the flush is much later
        observer = Observer(ME, Metrics(CollectorRegistry()), access_log=log)
        observer.clock = lambda: next(finished)
        finish(observer, record(request_id="first"))
        finish(observer, record(request_id="second"))
        observer.flush()
        log.close()
        return os.read(read, 65536)

    lines = [json.loads(line) for line in piped(main).splitlines()]
    assert [(e["request_id"], e["time"]) for e in lines] == [
        ("first", "2023-11-14T22:13:20.100Z"),
        ("second", "2023-11-14T22:13:20.200Z"),
    ]
