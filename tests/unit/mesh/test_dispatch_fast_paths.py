"""The dispatcher's per-request shortcuts give what the general code gives.

``route`` skips ``pick_destination`` for a single destination, reads a subset's
outside set and version in one call, makes the arrival check inline and rules out the
deadline headers with C calls; each is compared here with the general path it
replaces (``pick_destination``, ``Cluster.outside`` / ``subset_version``, running
``RoutePlan.steps`` in full, ``Deadline.start``).
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from proxy.http.model import RequestHead
from proxy.l4.conn import Direction, Intercepted
from proxy.mesh import Mesh, MeshDispatcher
from proxy.mesh.dispatch import RequestState, request_deadline
from proxy.mesh.observer import NULL_WATCH
from proxy.policy import Deadline
from proxy.routing import pick_destination
from tests.support.engine_front import run
from tests.support.mesh_front import VIP, Backend, Clock, config, mesh_front, service

NOW = 100.0
CONN = Intercepted(Direction.OUTBOUND, ("10.0.0.9", 40000), (VIP, 80), 4)
V1, V2 = {"version": "v1"}, {"version": "v2"}
ENDPOINTS = [
    {"address": "10.1.0.1", "port": 80, "labels": V1},
    {"address": "10.1.0.2", "port": 80, "labels": V1},
    {"address": "10.1.0.3", "port": 80, "labels": V2},
]


def _head(path: str, *headers: tuple[bytes, bytes]) -> RequestHead:
    return RequestHead("GET", path, "svc", "1.1", "id", (*headers, (b"Host", b"svc")))


def _mesh(routes: list[dict[str, Any]]) -> Mesh:
    svc = service("svc", ENDPOINTS, subsets={"v1": V1, "v2": V2}, routes=routes)
    return Mesh(config([svc]), clock=lambda: NOW)


ROUTES: list[dict[str, Any]] = [
    {"match": {"path": {"prefix": "/one/"}}, "destinations": [{"subset": "v2"}]},
    {"match": {"path": {"prefix": "/all/"}}, "destinations": [{}]},
    {
        "match": {"path": {"prefix": "/split/"}},
        "destinations": [{"subset": "v1", "weight": 30}, {"subset": "v2", "weight": 70}],
    },
    {
        "match": {"path": {"prefix": "/fault/"}},
        "fault": {"abort": {"http_status": 418, "percent": 50}},
        "destinations": [{"subset": "v1"}],
    },
    {"destinations": [{"subset": "v1"}]},
]
PATHS = ["/one/x", "/all/x", "/split/x", "/fault/x", "/other"]


@pytest.mark.parametrize("path", PATHS)
def test_routing_shortcuts_agree_with_the_general_path(path: str) -> None:
    mesh = _mesh(ROUTES)
    fast = MeshDispatcher(mesh, rng=random.Random(7))
    slow_rng = random.Random(7)
    plan = mesh.state.services["svc"]
    cluster = plan.cluster
    for deadline_header in (None, b"0", b"250"):
        extra = () if deadline_header is None else ((b"X-Mesh-Timeout-Ms", deadline_header),)
        head = _head(path, *extra)
        for _ in range(40):
            got = fast.route(CONN, head)
            # The general path, by hand: the same draws from a twin random source.
            route = next(r for r in plan.service.routes if path.startswith(_prefix(r)))
            rplan = plan.routes[id(route)]
            subset = rplan.subsets[pick_destination(route, slow_rng).subset]
            deadline = Deadline.start(NOW, rplan.timeout, head.headers)
            want = RequestState(NULL_WATCH, deadline, "GET", cluster, rplan, subset)
            for step in rplan.steps:
                step(want, head, NOW, slow_rng)
                if want.reply is not None:
                    break
            assert got.subset is subset
            assert got.outside == cluster.outside(subset)
            assert got.version == cluster.subset_version(subset)
            assert got.deadline == deadline
            assert (got.reply, got.delay, got.flag) == (want.reply, want.delay, want.flag)


def _prefix(route: Any) -> str:
    return "" if route.match.path is None else str(route.match.path.value)


HEADER_TABLES: list[tuple[tuple[bytes, bytes], ...]] = [
    (),
    ((b"Host", b"a"),),
    ((b"Host", b"a"), (b"x-request-id", b"abc")),  # as long as grpc-timeout
    ((b"x-mesh-timeout-ms", b"300"),),
    ((b"X-MESH-TIMEOUT-MS", b"300"), (b"Grpc-Timeout", b"100m")),
    ((b"grpc-timeout", b"2S"), (b"x-request-id", b"1")),
    ((b"x-mesh-timeout-ms", b"bogus"),),
    ((b"x-mesh-timeout-ms", b"0"),),
    ((b"x-mesh-timeout-msx", b"1"), (b"grpc-timeoutx", b"1S")),
]


@pytest.mark.parametrize("headers", HEADER_TABLES)
@pytest.mark.parametrize("timeout", [0.0, 0.5, 15.0])
def test_request_deadline_agrees_with_deadline_start(
    headers: tuple[tuple[bytes, bytes], ...], timeout: float
) -> None:
    assert request_deadline(100.0, timeout, headers) == Deadline.start(100.0, timeout, headers)


@pytest.mark.parametrize("sent", ["1234", "7", "0001", "999999"])
def test_the_attempts_timeout_header_is_the_deadlines_header_value(codec: str, sent: str) -> None:
    async def main() -> None:
        up = await Backend("up").start()
        clock = Clock(1000.3)  # not a round number: the float arithmetic must match too
        async with mesh_front(
            config([service("svc", [up.endpoint])]), clock=clock, codec=codec
        ) as front:
            resp = await front.request("/", headers=[f"x-mesh-timeout-ms: {sent}"])
        await up.close()
        want = Deadline.start(clock.now, 15.0, [(b"x-mesh-timeout-ms", sent.encode())])
        assert resp.status == 200
        assert up.seen[0].headers["x-mesh-timeout-ms"] == want.header_value(clock.now)
        assert up.seen[0].headers["x-mesh-attempt"] == "1"

    run(main())
