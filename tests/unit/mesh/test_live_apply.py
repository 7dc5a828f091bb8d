"""``Mesh.apply``: routing swaps at once, requests in flight finish on their snapshot,
endpoint state carries over; and ``tcp`` services routed from the same clusters."""

from __future__ import annotations

import asyncio
import random

from proxy.core.names import PASSTHROUGH_CLUSTER
from proxy.l4.conn import Direction, Intercepted
from proxy.mesh import Mesh, MeshTcpRouter
from tests.support.engine_front import run
from tests.support.mesh_front import VIP, Backend, Clock, config, mesh_front, service


def _two_versions(a: Backend, b: Backend, to: str) -> dict[str, object]:
    return service(
        "svc",
        [{**a.endpoint, "labels": {"version": "a"}}, {**b.endpoint, "labels": {"version": "b"}}],
        subsets={"a": {"version": "a"}, "b": {"version": "b"}},
        routes=[{"destinations": [{"subset": to}]}],
    )


def test_apply_swaps_routing_while_in_flight_requests_finish_on_the_old_state(codec: str) -> None:
    async def main() -> None:
        a, b = await Backend("a").start(), await Backend("b").start()
        old, new = config([_two_versions(a, b, "a")]), config([_two_versions(a, b, "b")])
        async with mesh_front(old, clock=Clock(), codec=codec) as front:
            mesh = front.mesh
            await front.request("/warm")
            cluster = mesh.state.clusters["svc"]
            ewma_before = front.row("svc", a)["ewma_ms"]
            a.delay = 0.3
            in_flight = asyncio.create_task(front.request("/slow"))
            await asyncio.sleep(0.05)
            mesh.apply(new)
            assert mesh.version == new.version != old.version
            assert mesh.config is new
            swapped = await front.request("/new")
            slow = await in_flight
            kept = mesh.state.clusters["svc"] is cluster
            row = front.row("svc", a)
        await a.close()
        await b.close()
        assert (slow.status, slow.body) == (200, b"a")  # started on the old routes
        assert swapped.body == b"b"
        assert kept  # same policy: the cluster (EWMA, ejections) carries over
        assert row["ewma_ms"] >= ewma_before  # a's history is still there, now with /slow
        assert row["ewma_ms"] >= 290.0

    run(main())


def test_apply_with_a_new_policy_builds_a_new_cluster_and_removes_gone_services(codec: str) -> None:
    async def main() -> None:
        a = await Backend("a").start()
        gone = service("gone", [a.endpoint], addresses=["10.96.0.30"])
        first = config([service("svc", [a.endpoint]), gone])
        second = config([service("svc", [a.endpoint], policy={"load_balancer": "random"})])
        async with mesh_front(first, codec=codec) as front:
            before = front.mesh.state.clusters["svc"]
            front.mesh.apply(second)
            after = front.mesh.state.clusters["svc"]
            resp = await front.request("/x")
            names = [c["name"] for c in front.mesh.clusters()]
        await a.close()
        assert after is not before and after.params.balancing.balancer == "random"
        assert resp.body == b"a"
        assert names == ["svc"]

    run(main())


def _conn(dst: tuple[str, int]) -> Intercepted:
    return Intercepted(Direction.OUTBOUND, ("10.0.0.9", 40000), dst, 4)


def test_tcp_services_are_balanced_from_the_mesh_and_follow_apply() -> None:
    v1 = {"version": "v1"}
    eps = [
        {"address": "10.1.0.1", "port": 5432, "labels": v1},
        {"address": "10.1.0.2", "port": 5432, "labels": v1},
    ]
    tcp = {**service("db", eps, port=5432), "protocol": "tcp"}  # peak_ewma: round robin at L4
    mesh = Mesh(config([tcp]))
    router = MeshTcpRouter("app", mesh, random.Random(1))
    picks = [router.route(_conn((VIP, 5432))) for _ in range(4)]
    assert [(r.host, r.port) for r in picks] == [("10.1.0.1", 5432), ("10.1.0.2", 5432)] * 2
    assert all(r.opaque and r.labels.destination_service_name == "db" for r in picks)
    assert picks[0].labels.destination_version == "v1"
    other = router.route(_conn(("10.9.9.9", 80)))
    assert (other.host, other.labels.destination_service_name) == ("10.9.9.9", PASSTHROUGH_CLUSTER)
    assert not other.http and not other.opaque  # undeclared: sniffed
    moved = {**tcp, "endpoints": [{"address": "10.1.0.3", "port": 6000}]}
    mesh.apply(config([moved]))
    assert (router.route(_conn((VIP, 5432))).host, router.route(_conn((VIP, 5432))).port) == (
        "10.1.0.3",
        6000,
    )


def test_only_services_declared_http_skip_protocol_detection() -> None:
    eps = [{"address": "10.1.0.1", "port": 8080}]
    web = service("web", eps, addresses=[VIP], port=8080)  # protocol: http
    auto = {**service("auto", eps, addresses=["10.96.0.21"], port=8080), "protocol": "auto"}
    mesh = Mesh(config([web, auto]))
    router = MeshTcpRouter("app", mesh, random.Random(1))
    declared = router.route(_conn((VIP, 8080)))
    assert declared.http and not declared.opaque
    assert (declared.host, declared.port) == (VIP, 8080)  # the HTTP handler routes it
    assert not router.route(_conn(("10.96.0.21", 8080))).http  # auto: sniffed
    assert not router.route(_conn((VIP, 9090))).http  # another port of that address
    mesh.apply(config([{**web, "protocol": "auto"}]))
    assert not router.route(_conn((VIP, 8080))).http  # follows apply
