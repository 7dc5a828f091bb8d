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
from operator import itemgetter
from typing import TYPE_CHECKING, Final

from proxy.config.model import Subset
from proxy.core.flags import Flag
from proxy.core.names import INBOUND_PASSTHROUGH_CLUSTERS
from proxy.core.names import PASSTHROUGH_CLUSTER as PASSTHROUGH
from proxy.http.exchange import Exchange
from proxy.http.model import Endpoint, LocalReply, RequestHead, RequestRecord
from proxy.l4.conn import Direction, Intercepted
from proxy.mesh.cluster import NOTHING, Cluster, EndpointKey
from proxy.mesh.observer import NullObserver, RequestObserver, RequestWatch
from proxy.mesh.runtime import Mesh
from proxy.mesh.state import RoutePlan
from proxy.mesh.steps import DIRECT, Step, after_arrival
from proxy.mesh.steps.deadline import EXPIRED
from proxy.policy import GRPC_TIMEOUT_HEADER, MESH_TIMEOUT_HEADER, Deadline
from proxy.routing import RequestInfo, match_route, pick_destination

if TYPE_CHECKING:
    from proxy.mesh.forward import MeshForwarder

_NO_HEADERS: Final[dict[str, str]] = {}
_DIRECT_LATER: Final = after_arrival(DIRECT)
_NO_DEADLINE: Final = Deadline(None)
_DEADLINE_HEADERS: Final = frozenset({MESH_TIMEOUT_HEADER.encode(), GRPC_TIMEOUT_HEADER.encode()})
_NAME: Final = itemgetter(0)


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
        "outside",
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
        outside: frozenset[EndpointKey] = NOTHING,
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
        # The cluster's endpoints outside ``subset`` (never picked), as of routing.
        self.outside = outside
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
    # Most requests carry neither header: C calls (map, bytes.lower, isdisjoint) settle
    # it with no Python loop over the headers (a length test would not: x-request-id
    # is as long as grpc-timeout).
    if not _DEADLINE_HEADERS.isdisjoint(map(bytes.lower, map(_NAME, headers))):
        found = [pair for pair in headers if pair[0].lower() in _DEADLINE_HEADERS]
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
        index = state.index
        # ``lookup``'s first step (the app dialled a service VIP), without the call.
        service = index.by_address.get(conn.original_dst)
        if service is None:
            host, port = conn.original_dst
            service = index.lookup(host, port, head.authority)
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
        if rplan.fixed:  # one destination: ``pick_destination`` would draw nothing
            subset = rplan.fixed_subset
        else:
            subset = rplan.subsets[pick_destination(route, self.rng).subset]
        deadline = request_deadline(now, rplan.timeout, head.headers)
        cluster = plan.cluster
        facts = cluster.subset_facts(subset)  # ``outside`` and ``subset_version`` at once
        ctx = RequestState(
            watch,
            deadline,
            head.method,
            cluster,
            rplan,
            subset,
            facts[2],
            service=service.name,
            endpoint=conn.original_dst,
            outside=NOTHING if subset is None else facts[1],
        )
        later = rplan.later_steps
        if later is None:
            return self._steps(ctx, head, now, rplan.steps)
        # ``_run_steps``, inline: the arrival check first, the route's other steps if any.
        at = deadline.at
        if at is not None and now >= at:  # ``expired_on_arrival``
            ctx.reply = EXPIRED
            return ctx
        return self._steps(ctx, head, now, later) if later else ctx

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
        return self._run_steps(ctx, head, now, deadline, DIRECT, _DIRECT_LATER)

    def _run_steps(
        self,
        state: RequestState,
        head: RequestHead,
        now: float,
        deadline: Deadline,
        steps: tuple[Step, ...],
        later: tuple[Step, ...] | None,
    ) -> RequestState:
        """``_steps``, with the arrival check (when it comes first: ``later`` is what
        follows it) made inline: a call or two fewer per request."""
        if later is None:
            return self._steps(state, head, now, steps)
        at = deadline.at
        if at is not None and now >= at:  # ``expired_on_arrival``
            state.reply = EXPIRED
            return state
        return self._steps(state, head, now, later) if later else state

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
