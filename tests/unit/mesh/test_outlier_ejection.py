"""Outlier ejection through the HTTP path, on a fake clock, as /clusters reports it."""

from __future__ import annotations

import asyncio

from tests.support.engine_front import run
from tests.support.mesh_front import Backend, Clock, Front, config, mesh_front, service

POLICY = {
    "load_balancer": "round_robin",
    "retries": {"attempts": 0},
    "outlier_detection": {"consecutive_errors": 2, "base_ejection_time": "30s"},
}


async def _until_seen(front: Front, backend: Backend, most: int) -> int:
    """Send requests until ``backend`` got one more; how many it took."""
    before = len(backend.seen)
    for n in range(1, most + 1):
        await front.request("/again")
        if len(backend.seen) > before:
            return n
    raise AssertionError(f"{backend.name} got none of {most} requests")


def test_ejection_after_consecutive_failures_then_probe_on_return(codec: str) -> None:
    async def main() -> None:
        bad, good = await Backend("bad", status=503).start(), await Backend("good").start()
        clock = Clock(1000.0)
        cfg = config([service("svc", [bad.endpoint, good.endpoint], policy=POLICY)])
        async with mesh_front(cfg, clock=clock, codec=codec) as front:
            statuses = [(await front.request(f"/{i}")).status for i in range(8)]
            ejected = front.row("svc", bad)
            assert len(bad.seen) == 2  # requests 1 and 3; nothing after the ejection
            assert statuses == [503, 200, 503] + [200] * 5
            assert ejected["health"] == "ejected" and ejected["ejections"] == 1
            assert ejected["ejected_until"] == 1030.0
            assert front.row("svc", good)["health"] == "healthy"

            clock.now = 1031.0  # ejection over: one probe, which fails -> out for longer
            await _until_seen(front, bad, 3)
            again = front.row("svc", bad)
            assert (again["health"], again["ejections"]) == ("ejected", 2)
            assert again["ejected_until"] == 1031.0 + 60.0

            bad.status = 200  # it recovered; the next probe succeeds
            clock.now = 1092.0
            await _until_seen(front, bad, 3)
            assert front.row("svc", bad)["health"] == "healthy"
            seen = len(bad.seen)
            for _ in range(4):
                await front.request("/rr")
            assert len(bad.seen) == seen + 2  # back in the round robin
        await bad.close()
        await good.close()

    run(main())


def test_clusters_report_shows_ewma_in_flight_and_weight(codec: str) -> None:
    async def main() -> None:
        slow = await Backend("slow", delay=0.1).start()
        cfg = config([service("svc", [{**slow.endpoint, "weight": 3}])])
        async with mesh_front(cfg, clock=Clock(), codec=codec) as front:
            before = front.row("svc", slow)
            pending = asyncio.create_task(front.request("/a"))
            await asyncio.sleep(0.05)
            during = front.row("svc", slow)
            await pending
            after = front.row("svc", slow)
            names = [c["name"] for c in front.mesh.clusters()]
        await slow.close()
        assert before["ewma_ms"] == 30.0  # the initial estimate of a new endpoint
        assert during["in_flight"] == 1
        assert after["ewma_ms"] >= 95.0  # a 100 ms sample is a peak: taken at once
        assert (after["in_flight"], after["weight"], after["health"]) == (0, 3.0, "healthy")
        assert names == ["svc"]

    run(main())
