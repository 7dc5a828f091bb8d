"""DNS discovery with a fake resolver: endpoints added, removed ones drained."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from proxy.core.flags import Flag
from proxy.mesh import resolve_dns
from tests.support.engine_front import run
from tests.support.mesh_front import Backend, config, mesh_front, service


def test_dns_endpoints_follow_the_answers_and_removed_ones_drain(codec: str) -> None:
    async def main() -> None:
        a = await Backend("a").start()
        b = await Backend("b", host="127.0.0.2", port=a.port).start()  # same port, other IP
        answers: list[str] = ["127.0.0.1"]
        failing = False

        async def resolver(host: str, port: int) -> Sequence[str]:
            assert (host, port) == ("svc.test", a.port)
            if failing:
                raise OSError("SERVFAIL")
            return list(answers)

        dns = {"hostname": "svc.test", "port": a.port, "refresh": "50ms"}
        svc = service("svc", [])
        del svc["endpoints"]
        cfg = config([{**svc, "dns": dns}])
        async with mesh_front(cfg, resolver=resolver, codec=codec) as front:
            first = await front.request("/1")
            a.delay = 0.4
            in_flight = asyncio.create_task(front.request("/slow"))
            await asyncio.sleep(0.05)
            answers[:] = ["127.0.0.2"]
            await asyncio.sleep(0.2)
            draining = front.row("svc", a)
            after = await front.request("/2")
            slow = await in_flight
            rows = [r["address"] for r in front.cluster("svc")["endpoints"]]
            failing = True
            await asyncio.sleep(0.2)
            kept = await front.request("/3")
        await a.close()
        await b.close()
        assert first.body == b"a"
        assert (draining["health"], draining["in_flight"]) == ("draining", 1)
        assert after.body == b"b"
        assert (slow.status, slow.body) == (200, b"a")  # the drained endpoint finished it
        assert rows == [f"127.0.0.2:{a.port}"]  # and is gone once idle
        assert kept.body == b"b"  # a failed lookup keeps the last answer
        assert [s.path for s in a.seen] == ["/1", "/slow"]

    run(main())


def test_the_default_resolver_asks_getaddrinfo() -> None:
    addresses = run(resolve_dns("localhost", 80))
    assert "127.0.0.1" in addresses
    assert len(addresses) == len(set(addresses))


def test_a_service_with_no_endpoint_yet_answers_503_uh(codec: str) -> None:
    async def main() -> None:
        async def resolver(host: str, port: int) -> Sequence[str]:
            raise OSError("NXDOMAIN")

        svc = service("svc", [])
        del svc["endpoints"]
        cfg = config([{**svc, "dns": "nowhere.test"}])
        async with mesh_front(cfg, resolver=resolver, codec=codec) as front:
            resp = await front.request("/x")
        assert resp.status == 503 and b"UH" in resp.body
        assert front.records[0].flag is Flag.NO_HEALTHY_UPSTREAM
        assert front.cluster("svc")["endpoints"] == []

    run(main())
