"""With tracing on and nothing sampled, the Zipkin exporter sleeps without a timer; the
first span starts the batch window (``interval``), a full batch goes at once."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from proxy.observe.exporter import CollectorUrl, ZipkinExporter
from proxy.observe.metrics import Metrics


def _exporter(batch: int = 4) -> tuple[ZipkinExporter, list[list[Any]]]:
    url = CollectorUrl.parse("http://127.0.0.1:9411/api/v2/spans")
    exporter = ZipkinExporter(url, Metrics(CollectorRegistry()), batch=batch, interval=0.05)
    posted: list[list[Any]] = []

    async def post(body: bytes) -> None:
        posted.append(json.loads(body))

    exporter._post = post  # type: ignore[method-assign]  # no collector needed here
    return exporter, posted


def test_idle_exporter_arms_no_timer_then_batches_after_the_first_span(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    timers: list[float | None] = []
    real = asyncio.timeout

    def counting(delay: float | None) -> Any:
        timers.append(delay)
        return real(delay)

    monkeypatch.setattr(asyncio, "timeout", counting)
    exporter, posted = _exporter()

    async def main() -> tuple[int, int]:
        task = asyncio.create_task(exporter.run())
        await asyncio.sleep(0.5)  # ten intervals of nothing
        idle = len(timers)
        exporter.submit({"id": "a"})
        exporter.submit({"id": "b"})
        await asyncio.sleep(0.2)
        sent = len(posted)
        exporter.close()
        await task
        return idle, sent

    idle, sent = asyncio.run(main())
    assert idle == 0
    assert sent == 1 and posted == [[{"id": "a"}, {"id": "b"}]]


def test_a_full_batch_goes_at_once_and_close_sends_the_rest() -> None:
    exporter, posted = _exporter(batch=2)

    async def main() -> list[int]:
        task = asyncio.create_task(exporter.run())
        await asyncio.sleep(0)
        for n in range(3):
            exporter.submit({"id": n})
        await asyncio.sleep(0.01)  # well inside the 50 ms window: only the full batch
        early = [len(b) for b in posted]
        exporter.close()
        await asyncio.wait_for(task, 2)
        return early

    assert asyncio.run(main()) == [2]
    assert [len(b) for b in posted] == [2, 1]
