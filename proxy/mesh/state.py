"""One immutable routing snapshot built from a ``MeshConfig``: what a request reads.

Everything a request needs is computed here once per configuration: the service
index, per route its retry parameters, timeouts and subsets, and for ``tcp``
services their address:port keys. Clusters (the mutable per-endpoint state) are
handed in, so a new snapshot reuses the clusters of services that persist.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from proxy.config.model import MeshConfig, Route, Service, Subset
from proxy.config.policy import Policy
from proxy.mesh.cluster import Cluster
from proxy.mesh.params import retry_params, service_params
from proxy.mesh.steps import Step, after_arrival, steps_for
from proxy.policy import RetryOn, RetryParams, ServiceParams
from proxy.routing import ServiceIndex


@dataclass(frozen=True, slots=True)
class RoutePlan:
    route: Route
    retry: RetryParams
    timeout: float  # whole request, retries included; 0 = none
    per_try_timeout: float  # 0 = none
    # A response status can be retried at all (so the engine must ask before committing).
    status_retry: bool
    # The final statuses the engine holds back for the retry loop's verdict: every 5xx
    # and any listed code (``RetryLoop.head`` says no to the rest without looking).
    hold: frozenset[int]
    subsets: Mapping[str | None, Subset | None]
    steps: tuple[Step, ...]  # run on each request before its attempts (``proxy.mesh.steps``)
    # ``steps`` after the arrival check (``after_arrival``), None when it is not first.
    later_steps: tuple[Step, ...] | None
    # The route's subset when it has a single destination: no weighted draw needed.
    # ``fixed`` says whether there is one (the subset itself may be None: all endpoints).
    fixed: bool
    fixed_subset: Subset | None


@dataclass(frozen=True, slots=True)
class ServicePlan:
    service: Service
    cluster: Cluster
    routes: Mapping[int, RoutePlan]  # by id() of the config's Route objects
    default: RoutePlan  # the implicit catch-all of a service without routes
    # Some route tests headers / the query: only then is a header dict built per request.
    needs_headers: bool
    # The first route, when it takes every request (no match, or only path prefix "/"):
    # then routing needs no RequestInfo. ``leading_slash``: the target must start with "/".
    leading: Route | None = None
    leading_slash: bool = False


_SERVER_ERRORS: Final = frozenset(range(500, 600))


class Shared:
    """What many route plans of one build hold alike, made once.

    A big mesh has thousands of services and routes and a handful of distinct
    policies: the config hands those without an override of their own the same
    ``Policy`` object, so the parameters made from one are looked up by its identity
    (the object is kept, so the id cannot be reused meanwhile). A hold set is a
    hundred status codes (4 KiB): one per distinct set, where one per route took 170 MiB
    for 10,000 services.
    """

    def __init__(self) -> None:
        self._retry: dict[int, tuple[Policy, RetryParams]] = {}
        self._service: dict[int, tuple[Policy, ServiceParams]] = {}
        self._hold: dict[frozenset[int], frozenset[int]] = {}

    def retry(self, policy: Policy) -> RetryParams:
        known = self._retry.get(id(policy))
        if known is None or known[0] is not policy:
            known = self._retry[id(policy)] = (policy, retry_params(policy))
        return known[1]

    def service(self, policy: Policy) -> ServiceParams:
        """A service's parameters (``Mesh`` compares them to keep its cluster)."""
        known = self._service.get(id(policy))
        if known is None or known[0] is not policy:
            known = self._service[id(policy)] = (policy, service_params(policy))
        return known[1]

    def hold(self, codes: frozenset[int]) -> frozenset[int]:
        held = self._hold.get(codes)
        if held is None:
            held = _SERVER_ERRORS | codes
            self._hold[codes] = held
        return held


def _route_plan(service: Service, route: Route, shared: Shared) -> RoutePlan:
    policy = route.resolved_policy
    retry = shared.retry(policy)
    status_retry = bool(retry.status_codes) or bool(
        retry.retry_on & {RetryOn.FIVE_XX, RetryOn.GATEWAY_ERROR}
    )
    subsets = {
        d.subset: (None if d.subset is None else service.subsets[d.subset])
        for d in route.destinations
    }
    steps = steps_for(route)
    fixed = len(route.destinations) == 1
    return RoutePlan(
        route=route,
        retry=retry,
        timeout=policy.timeout,
        per_try_timeout=retry.per_try_timeout,
        status_retry=status_retry and retry.attempts > 1,
        hold=shared.hold(retry.status_codes) if status_retry else frozenset(),
        subsets=subsets,
        steps=steps,
        later_steps=after_arrival(steps),
        fixed=fixed,
        fixed_subset=subsets[route.destinations[0].subset] if fixed else None,
    )


def service_plan(service: Service, cluster: Cluster, shared: Shared) -> ServicePlan:
    routes = {id(r): _route_plan(service, r, shared) for r in service.routes}
    default = _route_plan(service, service.default_route, shared)
    routes[id(service.default_route)] = default
    needs = any(r.match.headers or r.match.query for r in service.routes)
    leading, slash = _takes_everything(service.routes[0]) if service.routes else (None, False)
    return ServicePlan(service, cluster, routes, default, needs, leading, slash)


def _takes_everything(route: Route) -> tuple[Route | None, bool]:
    match = route.match
    if match.methods or match.headers or match.query:
        return None, False
    if match.path is None:
        return route, False
    if match.path.kind == "prefix" and match.path.value == "/":
        return route, True
    return None, False


@dataclass(frozen=True, slots=True)
class MeshState:
    config: MeshConfig
    index: ServiceIndex
    services: Mapping[str, ServicePlan]
    tcp: Mapping[tuple[str, int], ServicePlan]  # address:port of ``tcp`` services
    http: frozenset[tuple[str, int]]  # address:port of services declared ``http``
    clusters: Mapping[str, Cluster]
    registry_only: bool
    passthrough_timeout: float  # unknown destinations: the mesh defaults' timeout
    # Inbound: the ``version`` label of this pod's endpoints, by address:port.
    local_versions: Mapping[tuple[str, int], tuple[str, str]]

    @property
    def version(self) -> str:
        return self.config.version


def build_state(
    config: MeshConfig, clusters: Mapping[str, Cluster], plans: Mapping[str, ServicePlan]
) -> MeshState:
    """A snapshot over ``clusters`` and ``plans`` (one of each per service name, made by
    the caller with ``service_plan``: see ``Mesh._build``)."""
    services: dict[str, ServicePlan] = {}
    tcp: dict[tuple[str, int], ServicePlan] = {}
    http: set[tuple[str, int]] = set()
    versions: dict[tuple[str, int], tuple[str, str]] = {}
    for service in config.services:
        plan = plans[service.name]
        services[service.name] = plan
        if service.protocol == "tcp":
            for address in service.addresses:
                tcp[(address, service.port)] = plan
        elif service.protocol == "http":
            http.update((address, service.port) for address in service.addresses)
        for e in service.endpoints:
            versions.setdefault(
                (e.address, e.port), (service.name, e.labels.get("version", "unknown"))
            )
    return MeshState(
        config=config,
        index=ServiceIndex(config),
        services=services,
        tcp=tcp,
        http=frozenset(http),
        clusters=dict(clusters),
        registry_only=config.mesh.outbound_policy == "registry_only",
        passthrough_timeout=config.defaults.timeout,
        local_versions=versions,
    )
