"""The validated mesh configuration: frozen dataclasses, built only by the parser.

Everything a request needs is resolved at load time: regexes are compiled, header
names lower-cased, subsets expanded to their endpoints, weights summed, and each
route's policy merged (route > service > defaults > built-in), so routing per
request only reads. ``MeshConfig.version`` hashes the canonical JSON of it all.
"""

from __future__ import annotations

import bisect
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from proxy.config.canonical import canonical_chunks, to_jsonable
from proxy.config.policy import Policy, PolicyOverride

Protocol = Literal["http", "tcp", "auto"]
PROTOCOLS = ("http", "tcp", "auto")
OUTBOUND_POLICIES = ("allow_any", "registry_only")


@dataclass(frozen=True)
class Tracing:
    zipkin_url: str
    sample_rate: float = 0.01  # Istio's default: 1 % of traces


@dataclass(frozen=True)
class Overload:
    """Per-worker caps (Envoy's overload manager and listener limits); docs/overload.md."""

    max_downstream_connections: int = 8192  # also capped by the fd limit (ulimit -n)
    max_pending_requests: int = 4096  # waiting for an upstream connection: 503 UO past it
    per_connection_buffer_bytes: int = 64 * 1024  # Envoy per_connection_buffer_limit_bytes
    max_buffered_bytes: int = 256 * 1024 * 1024  # full buffers in total: 503 OM past it


@dataclass(frozen=True)
class MeshSettings:
    outbound_policy: str = "allow_any"  # registry_only: unknown destinations get 502 NR
    protocol_detect_timeout: float = 0.1
    tracing: Tracing | None = None  # None: no spans are exported
    access_log: bool = True
    overload: Overload = field(default_factory=Overload)


@dataclass(frozen=True)
class Endpoint:
    address: str  # canonical IP text
    port: int
    labels: Mapping[str, str] = field(default_factory=dict)
    weight: int = 1

    # Balancers and outlier detectors key their state by endpoint: it must hash, and
    # the (unhashable) labels dict cannot take part.
    def __hash__(self) -> int:
        return hash((self.address, self.port))


@dataclass(frozen=True)
class DnsDiscovery:
    """Endpoints are the A/AAAA records of ``hostname``, re-resolved every ``refresh``."""

    hostname: str
    port: int
    refresh: float = 5.0


@dataclass(frozen=True)
class Subset:
    name: str
    selector: Mapping[str, str]  # every label must match; empty selects all

    def __hash__(self) -> int:
        return hash((self.name, tuple(sorted(self.selector.items()))))

    def selects(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in self.selector.items())


@dataclass(frozen=True)
class ValueMatch:
    """One condition on a path, header or query value (regexes match the whole value)."""

    kind: Literal["exact", "prefix", "regex", "present", "absent"]
    value: str = ""
    pattern: re.Pattern[str] | None = field(default=None, compare=False)  # from ``value``

    def matches(self, actual: str | None) -> bool:
        if self.kind == "absent":
            return actual is None
        if actual is None:
            return False
        if self.kind == "exact":
            return actual == self.value
        if self.kind == "prefix":
            return actual.startswith(self.value)
        if self.kind == "regex":
            return self.pattern is not None and self.pattern.fullmatch(actual) is not None
        return True  # present


@dataclass(frozen=True)
class RouteMatch:
    """All conditions must hold; an empty match matches every request."""

    path: ValueMatch | None = None
    methods: frozenset[str] = frozenset()  # empty: any method
    headers: tuple[tuple[str, ValueMatch], ...] = ()  # lower-case names
    query: tuple[tuple[str, ValueMatch], ...] = ()


@dataclass(frozen=True)
class FaultDelay:
    """Hold ``percent`` % of the route's requests for ``fixed`` seconds (flag ``DI``)."""

    fixed: float
    percent: float


@dataclass(frozen=True)
class FaultAbort:
    """Answer ``percent`` % of the route's requests with ``http_status`` (flag ``FI``)."""

    http_status: int
    percent: float


@dataclass(frozen=True)
class Fault:
    """Istio's ``HTTPFaultInjection``: delay and abort are chosen independently; a
    request given both is answered with the abort after the delay (as Envoy does)."""

    delay: FaultDelay | None = None
    abort: FaultAbort | None = None


@dataclass(frozen=True)
class Destination:
    subset: str | None  # None: all endpoints of the service
    weight: int = 1


@dataclass(frozen=True)
class Route:
    destinations: tuple[Destination, ...]
    match: RouteMatch = field(default_factory=RouteMatch)
    name: str | None = None
    policy: PolicyOverride = field(default_factory=PolicyOverride)
    # Derived fields (compare=False) are left out of equality, dumps and the version.
    resolved_policy: Policy = field(default_factory=Policy, compare=False)
    fault: Fault | None = None
    # Running sums of the weights, for one bisect per pick.
    cumulative_weights: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        sums, total = [], 0
        for d in self.destinations:
            total += d.weight
            sums.append(total)
        object.__setattr__(self, "cumulative_weights", tuple(sums))

    def destination_at(self, point: int) -> Destination:
        """The destination owning ``point`` in [0, total weight)."""
        return self.destinations[bisect.bisect_right(self.cumulative_weights, point)]


@dataclass(frozen=True)
class Service:
    name: str
    port: int
    addresses: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()  # lower-case
    protocol: Protocol = "auto"
    endpoints: tuple[Endpoint, ...] = ()
    dns: DnsDiscovery | None = None
    subsets: Mapping[str, Subset] = field(default_factory=dict)
    routes: tuple[Route, ...] = ()
    policy: PolicyOverride = field(default_factory=PolicyOverride)
    resolved_policy: Policy = field(default_factory=Policy, compare=False)
    # Used when ``routes`` is empty: every request goes to all endpoints.
    default_route: Route = field(default_factory=lambda: Route((Destination(None),)), compare=False)
    # Static endpoints of each subset, resolved once at load.
    subset_members: Mapping[str, tuple[Endpoint, ...]] = field(
        default_factory=dict, repr=False, compare=False
    )

    def __hash__(self) -> int:
        return hash((self.name, self.port, self.routes))


@dataclass(frozen=True)
class MeshConfig:
    mesh: MeshSettings = field(default_factory=MeshSettings)
    defaults: Policy = field(default_factory=Policy)  # built-in merged with ``defaults``
    services: tuple[Service, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The configuration in force as plain JSON data (durations in seconds)."""
        data = to_jsonable(self)
        assert isinstance(data, dict)
        return data

    @cached_property
    def version(self) -> str:
        """sha256 of the canonical JSON: equal for documents that mean the same thing."""
        digest = hashlib.sha256()
        for chunk in canonical_chunks(self.to_dict()):  # a service a piece
            digest.update(chunk.encode())
        return digest.hexdigest()
