"""Routing through the mesh dispatcher: service lookup, routes, subsets, passthrough."""

from __future__ import annotations

import asyncio

from proxy.core.flags import Flag
from proxy.mesh import TIMEOUT_HEADER
from tests.support.engine_front import run
from tests.support.mesh_front import VIP, Backend, config, mesh_front, service


def test_service_by_original_destination_then_by_host(codec: str) -> None:
    async def main() -> None:
        a, b = await Backend("a").start(), await Backend("b").start()
        cfg = config(
            [
                service("svc-a", [a.endpoint]),
                service("svc-b", [b.endpoint], addresses=[], hosts=["b.test"]),
            ]
        )
        async with mesh_front(cfg, codec=codec) as front:
            by_vip = await front.request("/x", host="whatever")
            front.target = ("10.1.2.3", 80)  # not a VIP: the Host header decides
            by_host = await front.request("/y", host="b.test:80")
        await a.close()
        await b.close()
        assert (by_vip.status, by_vip.body) == (200, b"a")
        assert (by_host.status, by_host.body) == (200, b"b")
        assert [s.path for s in a.seen] == ["/x"] and [s.path for s in b.seen] == ["/y"]
        assert [r.service for r in front.records] == ["svc-a", "svc-b"]

    run(main())


def test_routes_pick_subsets_first_match_wins_and_record_the_version(codec: str) -> None:
    async def main() -> None:
        v1, v2 = await Backend("v1").start(), await Backend("v2").start()
        staging = {"headers": {"x-env": {"exact": "staging"}}}
        split = [{"subset": "v2", "weight": 100}, {"subset": "v1", "weight": 0}]
        routes = [
            {"match": staging, "destinations": [{"subset": "v2"}]},
            {"match": {"path": {"prefix": "/api/"}}, "destinations": split},
            {"destinations": [{"subset": "v1"}]},
        ]
        cfg = config(
            [
                service(
                    "reviews",
                    [
                        {**v1.endpoint, "labels": {"version": "v1"}},
                        {**v2.endpoint, "labels": {"version": "v2"}},
                    ],
                    subsets={"v1": {"version": "v1"}, "v2": {"version": "v2"}},
                    routes=routes,
                )
            ]
        )
        async with mesh_front(cfg, codec=codec) as front:
            bodies = [
                (await front.request("/", headers=["X-Env: staging"])).body,
                (await front.request("/api/items")).body,
                (await front.request("/other")).body,
                (await front.request("/other")).body,
            ]
        await v1.close()
        await v2.close()
        assert bodies == [b"v2", b"v2", b"v1", b"v1"]
        assert [r.version for r in front.records] == ["v2", "v2", "v1", "v1"]

    run(main())


def test_no_matching_route_is_404_nr_and_reaches_no_endpoint(codec: str) -> None:
    async def main() -> None:
        a = await Backend("a").start()
        routes = [{"match": {"path": {"exact": "/only"}}, "destinations": [{}]}]
        cfg = config([service("svc", [a.endpoint], routes=routes)])
        async with mesh_front(cfg, codec=codec) as front:
            miss = await front.request("/elsewhere")
            hit = await front.request("/only")
        await a.close()
        assert (miss.status, hit.status) == (404, 200)
        assert b"NR" in miss.body
        assert [s.path for s in a.seen] == ["/only"]
        assert [r.flag for r in front.records] == [Flag.NO_ROUTE, Flag.NONE]

    run(main())


def test_allow_any_passes_unknown_destinations_through_registry_only_refuses(codec: str) -> None:
    async def main() -> None:
        a, outside = await Backend("a").start(), await Backend("outside").start()
        allow = config([service("svc", [a.endpoint])])
        strict = config([service("svc", [a.endpoint])], mesh={"outbound_policy": "registry_only"})
        async with mesh_front(allow, codec=codec) as front:
            front.target = ("127.0.0.1", outside.port)
            passed = await front.request("/p", host="unknown.test")
        async with mesh_front(strict, codec=codec) as strict_front:
            strict_front.target = ("127.0.0.1", outside.port)
            refused = await strict_front.request("/r", host="unknown.test")
        await a.close()
        await outside.close()
        assert (passed.status, passed.body) == (200, b"outside")
        assert front.records[0].service == "PassthroughCluster"
        assert refused.status == 502 and b"NR" in refused.body
        assert strict_front.records[0].flag is Flag.NO_ROUTE
        assert [s.path for s in outside.seen] == ["/p"]  # the refused one never left
        assert not a.seen

    run(main())


def test_observer_sees_every_request_once_and_adds_headers_to_each_attempt(codec: str) -> None:
    async def main() -> None:
        a = await Backend("a").start()
        cfg = config([service("svc", [a.endpoint])], mesh={"outbound_policy": "registry_only"})
        async with mesh_front(cfg, codec=codec) as front:
            ok = await front.request("/ok")
            front.target = ("10.9.9.9", 80)
            nr = await front.request("/nr", host="nobody")
            reader_writer = await _raw(front.port, b"BROKEN\r\n\r\n")
        await a.close()
        assert (ok.status, nr.status, reader_writer) == (200, 502, 400)
        rec = front.recorder
        assert [r.status for r in rec.records] == [200, 502, 400]
        assert len(rec.started) == 3 and rec.tokens == [1, 2, 3]
        assert a.seen[0].headers["x-test-token"] == "1"
        assert a.seen[0].headers["x-mesh-attempt"] == "1"
        assert rec.records[0].endpoint == ("127.0.0.1", a.port)
        assert rec.records[0].conn.direction.reporter == "source"
        assert rec.records[0].request_id == a.seen[0].headers["x-request-id"]

    run(main())


async def _raw(port: int, data: bytes) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    line = await reader.readline()
    writer.close()
    return int(line.split()[1])


def test_inbound_goes_to_the_local_app_from_127_0_0_6_with_the_service_name(codec: str) -> None:
    async def main() -> None:
        app = await Backend("app").start()
        cfg = config([service("reviews", [{**app.endpoint, "labels": {"version": "v3"}}])])
        async with mesh_front(cfg, inbound=True, codec=codec) as front:
            front.target = ("127.0.0.1", app.port)
            resp = await front.request("/in", headers=["x-mesh-timeout-ms: 5000"])
        await app.close()
        assert (resp.status, resp.body) == (200, b"app")
        assert app.seen[0].peer == "127.0.0.6"
        record = front.records[0]
        assert (record.service, record.version) == ("reviews", "v3")
        assert record.conn.direction.reporter == "destination"
        assert 0 < int(app.seen[0].headers[TIMEOUT_HEADER.decode()]) <= 5000
        assert VIP not in app.seen[0].headers.get("host", "")

    run(main())


def test_a_deadline_already_spent_is_504_dl_before_any_attempt(codec: str) -> None:
    async def main() -> None:
        a = await Backend("a").start()
        async with mesh_front(config([service("svc", [a.endpoint])]), codec=codec) as front:
            spent = await front.request("/late", headers=["x-mesh-timeout-ms: 0"])
            front.target = ("127.0.0.1", a.port)  # passthrough honours it too
            passthrough = await front.request(
                "/late", host="elsewhere", headers=["grpc-timeout: 0m"]
            )
        await a.close()
        assert (spent.status, passthrough.status) == (504, 504)
        assert b"DL" in spent.body and b"DL" in passthrough.body
        assert [r.flag for r in front.records] == [Flag.DEADLINE_EXCEEDED] * 2
        assert not a.seen

    run(main())


def test_a_leading_catch_all_route_takes_slash_targets_only(codec: str) -> None:
    """The shortcut for a first route matching everything keeps match_route's answers."""

    async def main() -> None:
        v1, v2 = await Backend("v1").start(), await Backend("v2").start()
        routes = [
            {"match": {"path": {"prefix": "/"}}, "destinations": [{"subset": "v2"}]},
            {"destinations": [{"subset": "v1"}]},
        ]
        endpoints = [
            {**v1.endpoint, "labels": {"version": "v1"}},
            {**v2.endpoint, "labels": {"version": "v2"}},
        ]
        subsets = {"v1": {"version": "v1"}, "v2": {"version": "v2"}}
        cfg = config([service("reviews", endpoints, subsets=subsets, routes=routes)])
        async with mesh_front(cfg, codec=codec) as front:
            slash = await front.request("/any/path?q=1")
            star = await front.request("*", method="OPTIONS")
        await v1.close()
        await v2.close()
        assert (slash.status, slash.body) == (200, b"v2")
        assert (star.status, star.body) == (200, b"v1")  # "*" is no "/" prefix: next route

    run(main())
