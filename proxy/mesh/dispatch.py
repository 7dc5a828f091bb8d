"""``MeshDispatcher``: which service, route and subset a request goes to, and its deadline.

Outbound, the service is found by original destination then Host; its first
matching route picks a destination subset (weighted). Unknown destinations pass
through to where the app was going (``allow_any``) or get 502 ``NR``
(``registry_only``). Inbound requests go to the local app. The decision is a
``RequestState``: the request's own object, which the engine runs (``run``, carried
out by ``MeshForwarder``, which chooses endpoints per attempt) and hands the finished
record back to (``done``, to the observer).
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from proxy.config.model import Subset
from proxy.core.flags import Flag
from proxy.core.names import INBOUND_PASSTHROUGH_CLUSTERS
from proxy.core.names import PASSTHROUGH_CLUSTER as PASSTHROUGH
from proxy.http.exchange import Exchange
from proxy.http.model import Endpoint, LocalReply, RequestHead, RequestRecord
from proxy.l4.conn import Direction, Intercepted
from proxy.mesh.cluster import Cluster
from proxy.mesh.observer import NullObserver, RequestObserver, RequestWatch
from proxy.mesh.runtime import Mesh
from proxy.mesh.state import RoutePlan
from proxy.mesh.steps import DIRECT, Step
from proxy.policy import GRPC_TIMEOUT_HEADER, MESH_TIMEOUT_HEADER, Deadline
from proxy.routing import RequestInfo, match_route, pick_destination

if TYPE_CHECKING:
    from proxy.mesh.forward import MeshForwarder

_NO_HEADERS: dict[str, str] = {}
_NO_DEADLINE = Deadline(None)
_DEADLINE_HEADERS = frozenset({MESH_TIMEOUT_HEADER.encode(), GRPC_TIMEOUT_HEADER.encode()})
_DEADLINE_LENGTHS = frozenset(len(name) for name in _DEADLINE_HEADERS)


class RequestState:
    """What routing decided for one request, and what its attempts learn.

    It is the engine's ``Forwarding`` for the request: ``reply`` answers locally, else
    ``run`` carries out the attempts through the ``MeshForwarder`` that started it.
    """

    __slots__ = (
        "cluster",
        "deadline",
        "delay",
        "endpoint",
        "flag",
        "forwarder",
        "inbound",
        "later",
        "method",
        "plan",
        "reply",
        "service",
        "subset",
        "version",
        "watch",
    )

    def __init__(
        self,
        watch: RequestWatch,
        deadline: Deadline,
        method: str,
        cluster: Cluster | None = None,
        plan: RoutePlan | None = None,
        subset: Subset | None = None,
        version: str = "",
        inbound: bool = False,
        *,
        service: str = "",
        endpoint: Endpoint = ("", 0),
        reply: LocalReply | None = None,
    ) -> None:
        self.watch = watch  # telemetry's view of this request
        self.deadline = deadline
        self.method = method
        self.cluster = cluster  # None: one attempt to the original destination
        self.plan = plan
        self.subset = subset
        self.version = version  # of the endpoint the last attempt went to
        self.inbound = inbound  # to the local app, from 127.0.0.6 / ::6
        self.service = service
        self.endpoint = endpoint  # where the client was going
        self.reply = reply  # answer locally, no attempt
        # Set by per-request steps (``proxy.mesh.steps``): seconds to hold the request
        # before its attempts, a reply to give after that hold, the record's flag.
        self.delay = 0.0
        self.later: LocalReply | None = None
        self.flag = Flag.NONE
        self.forwarder: MeshForwarder | None = None  # set by the forwarder that starts it

    def run(self, exchange: Exchange) -> Awaitable[None]:
        # A plain call returning the forwarder's coroutine: no coroutine level of its own.
        assert self.forwarder is not None
        return self.forwarder.run(self, exchange)

    def done(self, record: RequestRecord) -> None:
        self.watch.done(record)


def request_deadline(
    now: float, timeout: float, headers: tuple[tuple[bytes, bytes], ...]
) -> Deadline:
    """``Deadline.start``, with the headers it reads picked out cheaply first."""
    found: list[tuple[bytes, bytes]] | None = None
    for pair in headers:
        name = pair[0]
        if len(name) in _DEADLINE_LENGTHS and name.lower() in _DEADLINE_HEADERS:
            found = [pair] if found is None else [*found, pair]
    if found is not None:
        return Deadline.start(now, timeout, found)
    return Deadline(now + timeout, "route") if timeout > 0 else _NO_DEADLINE


def _request_info(head: RequestHead, needs_headers: bool) -> RequestInfo:
    path, _, query = head.path.partition("?")
    headers = _NO_HEADERS
    if needs_headers:
        headers = {}
        for name, value in head.headers:
            key = name.decode("latin-1").lower()
            text = value.decode("latin-1")
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return RequestInfo(head.method, path, query, headers, head.authority or None)


class MeshDispatcher:
    def __init__(
        self,
        mesh: Mesh,
        *,
        observer: RequestObserver | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.mesh = mesh
        self.clock: Callable[[], float] = mesh.clock
        self.rng = rng or random.Random()
        self.observer: RequestObserver = observer or NullObserver()

    def route(self, conn: Intercepted, head: RequestHead) -> RequestState:
        watch = self.observer.start(conn, head)
        state = self.mesh.state  # this request's snapshot, whatever a reload does meanwhile
        now = self.clock()
        if conn.direction is Direction.INBOUND:
            return self._direct(
                conn, head, watch, now, 0.0, INBOUND_PASSTHROUGH_CLUSTERS[conn.family]
            )
        host, port = conn.original_dst
        service = state.index.lookup(host, port, head.authority)
        if service is None:
            if state.registry_only:
                reply = LocalReply(502, Flag.NO_ROUTE)
                return RequestState(watch, _NO_DEADLINE, head.method, reply=reply)
            return self._direct(conn, head, watch, now, state.passthrough_timeout, PASSTHROUGH)
        plan = state.services[service.name]
        leading = plan.leading
        if leading is not None and (not plan.leading_slash or head.path.startswith("/")):
            route, rplan = leading, plan.routes[id(leading)]
        elif service.routes:
            matched = match_route(service, _request_info(head, plan.needs_headers))
            if matched is None:
                reply = LocalReply(404, Flag.NO_ROUTE)
                return RequestState(watch, _NO_DEADLINE, head.method, reply=reply)
            route, rplan = matched, plan.routes[id(matched)]
        else:
            route, rplan = service.default_route, plan.default
        destination = pick_destination(route, self.rng)
        subset = rplan.subsets[destination.subset]
        deadline = request_deadline(now, rplan.timeout, head.headers)
        cluster = plan.cluster
        version = cluster.subset_version(subset)
        ctx = RequestState(
            watch,
            deadline,
            head.method,
            cluster,
            rplan,
            subset,
            version,
            service=service.name,
            endpoint=conn.original_dst,
        )
        return self._steps(ctx, head, now, rplan.steps)

    def _direct(
        self,
        conn: Intercepted,
        head: RequestHead,
        watch: RequestWatch,
        now: float,
        timeout: float,
        name: str,
    ) -> RequestState:
        """One attempt to the original destination (passthrough, or the local app)."""
        state = self.mesh.state
        deadline = request_deadline(now, timeout, head.headers)
        version = "unknown"
        if conn.direction is Direction.INBOUND:
            known = state.local_versions.get(conn.original_dst)
            if known is not None:
                name, version = known
        inbound = conn.direction is Direction.INBOUND
        ctx = RequestState(
            watch,
            deadline,
            head.method,
            version=version,
            inbound=inbound,
            service=name,
            endpoint=conn.original_dst,
        )
        return self._steps(ctx, head, now, DIRECT)

    def _steps(
        self, state: RequestState, head: RequestHead, now: float, steps: tuple[Step, ...]
    ) -> RequestState:
        """Run the request's steps (``proxy.mesh.steps``) until one replies."""
        rng = self.rng
        for step in steps:
            step(state, head, now, rng)
            if state.reply is not None:
                if state.delay:  # answered after the hold, by ``MeshForwarder.run``
                    state.later, state.reply = state.reply, None
                break
        return state

    def refused(self, record: RequestRecord) -> None:
        """Refused before routing (e.g. 400): the observer has not seen it yet."""
        head = RequestHead(
            record.method, record.path, record.authority, record.http_version, record.request_id, ()
        )
        self.observer.start(record.conn, head).done(record)
