"""``Mesh``: the live routing state the server holds once, swapped whole on reload.

``apply(config)`` builds the next snapshot completely (clusters, plans, index) and
only then replaces ``state`` in one assignment, so a request reads one consistent
snapshot from start to end while new requests see the new one. A service whose
policy parameters did not change keeps its cluster, so its endpoints' EWMA,
ejections and in-flight counts carry over; DNS watchers follow the services.

Building is most of a swap's work (0.2 of the 0.3 s a 10,000-service mesh takes),
and touches nothing live, so the reloader has it done off the loop, in the thread
that parsed the document: ``prepare(config)`` there, then ``apply`` of that same
config object on the loop only commits it (endpoints, the swap, DNS watchers, and
closing the dropped clusters' pools). A prepared snapshot is used only if no other
config was committed since it was prepared; otherwise ``apply`` builds anew.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from proxy.config.model import DnsDiscovery, Endpoint, MeshConfig
from proxy.http.codec import CodecFactory, H11Codec
from proxy.http.pool import Opener
from proxy.mesh.cluster import Cluster
from proxy.mesh.discovery import DnsWatcher, Resolver, resolve_dns
from proxy.mesh.state import MeshState, Shared, build_state, service_plan
from proxy.policy.overload import Overload

log = logging.getLogger("proxy.mesh")
FIRST_LOOKUP_WAIT = 2.0  # seconds start() waits for the first DNS answers


@dataclass(frozen=True)
class Prepared:
    """A snapshot built (``Mesh.prepare``) and not yet committed."""

    config: MeshConfig
    base: dict[str, Cluster]  # the clusters in force it was built against
    clusters: dict[str, Cluster]  # kept from ``base``, or new and not yet live
    state: MeshState
    # Static services whose cluster's endpoints differ from their config's (most do
    # not, at most swaps): compared here, set at the commit.
    moved: tuple[tuple[Cluster, tuple[Endpoint, ...]], ...]


class Mesh:
    def __init__(
        self,
        config: MeshConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        resolver: Resolver = resolve_dns,
        opener: Opener | None = None,
        codec: CodecFactory = H11Codec,
        overload: Overload | None = None,
    ) -> None:
        self.clock = clock
        self.overload = overload  # the worker's guard, shared by every cluster's pool
        self.codec = codec  # the clusters' upstream pools speak it (--http-codec)
        self.resolver = resolver
        self.opener = opener
        self._clusters: dict[str, Cluster] = {}
        self._watchers: dict[str, tuple[DnsDiscovery, DnsWatcher]] = {}
        self._running = False
        self._closing: set[asyncio.Task[None]] = set()
        self._prepared: Prepared | None = None  # by ``prepare``, for ``apply``
        self.state: MeshState = self._commit(self._build(config))

    @property
    def config(self) -> MeshConfig:
        return self.state.config

    @property
    def version(self) -> str:
        return self.state.config.version

    def prepare(self, config: MeshConfig) -> MeshState:
        """Build ``config``'s snapshot for a later ``apply`` of it, and return it; safe
        off the loop (it reads the clusters in force, and changes nothing a request
        can see). Raises ``proxy.policy.InvalidParameter`` for a policy the core
        cannot use.
        """
        prepared = self._prepared = self._build(config)
        return prepared.state

    def apply(self, config: MeshConfig) -> None:
        """Route new requests by ``config``; requests in flight finish on their snapshot.

        Raises ``proxy.policy.InvalidParameter`` (nothing changed) for a policy the
        core cannot use.
        """
        prepared, self._prepared = self._prepared, None
        if prepared is None or prepared.config is not config or prepared.base is not self._clusters:
            prepared = self._build(config)  # not prepared, or another swap came between
        self._commit(prepared)

    def _build(self, config: MeshConfig) -> Prepared:
        base = self._clusters  # replaced by each commit, never changed in place
        shared = Shared()  # parameters made once per Policy object (see ``Shared``)
        params = {s.name: shared.service(s.resolved_policy) for s in config.services}
        clusters: dict[str, Cluster] = {}
        for service in config.services:
            old = base.get(service.name)
            if old is not None and old.params == params[service.name]:
                clusters[service.name] = old
            else:
                clusters[service.name] = Cluster(
                    service.name, params[service.name], self.opener, self.codec, self.overload
                )
        # The plans are most of the work. Made here, a service at a time, by this
        # module's interpreted loop: compiled code never lets go of the interpreter
        # lock, and off the loop this runs in a thread the loop must take turns with.
        plans = {s.name: service_plan(s, clusters[s.name], shared) for s in config.services}
        moved = tuple(
            (clusters[s.name], s.endpoints)
            for s in config.services
            if s.dns is None and s.endpoints != clusters[s.name].endpoints
        )
        state = build_state(config, clusters, plans)
        return Prepared(config, base, clusters, state, moved)

    def _commit(self, prepared: Prepared) -> MeshState:
        """On the loop: endpoints in, the swap, the watchers, the dropped pools out."""
        now = self.clock()
        config, base, clusters = prepared.config, prepared.base, prepared.clusters
        for cluster in clusters.values():
            cluster.forget_subsets()  # the new config's Subset objects are new ones
        for cluster, endpoints in prepared.moved:
            cluster.set_endpoints(endpoints, now)
        for service in config.services:
            cluster = clusters[service.name]
            if service.dns is None:
                if service.name in self._watchers:  # found by DNS until now: a lookup
                    cluster.set_endpoints(service.endpoints, now)  # may have come since
                continue
            old = base.get(service.name)
            if old is not None and old is not cluster:
                cluster.set_endpoints(old.endpoints, now)  # until the next lookup
        dropped = [c for name, c in base.items() if clusters.get(name) is not c]
        self._clusters = clusters
        self.state = prepared.state  # the swap: one assignment
        self._sync_watchers(config)
        if self._running:
            for cluster in dropped:
                self._close_later(cluster)
        return prepared.state

    def _sync_watchers(self, config: MeshConfig) -> None:
        wanted: dict[str, tuple[DnsDiscovery, DnsWatcher]] = {}
        for service in config.services:
            if service.dns is None:
                continue
            cluster = self._clusters[service.name]
            current = self._watchers.pop(service.name, None)
            if current is not None and current[0] == service.dns and current[1].cluster is cluster:
                wanted[service.name] = current
                continue
            if current is not None:
                current[1].stop()
            watcher = DnsWatcher(cluster, service.dns, self.resolver, self.clock)
            wanted[service.name] = (service.dns, watcher)
            if self._running:
                watcher.start()
        for _, watcher in self._watchers.values():
            watcher.stop()
        self._watchers = wanted

    def _close_later(self, cluster: Cluster) -> None:
        # Busy connections close when their exchange ends; idle ones now.
        task = asyncio.get_running_loop().create_task(cluster.pool.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def start(self) -> None:
        """Start DNS discovery and wait (briefly) for the first answers."""
        self._running = True
        watchers = [w for _, w in self._watchers.values()]
        for watcher in watchers:
            watcher.start()
        if watchers:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(FIRST_LOOKUP_WAIT):
                    for watcher in watchers:
                        await watcher.resolved.wait()

    async def close(self) -> None:
        self._running = False
        for _, watcher in self._watchers.values():
            watcher.stop()
        for cluster in self._clusters.values():
            await cluster.pool.close()
        if self._closing:
            await asyncio.wait(set(self._closing), timeout=1.0)

    def dump(self) -> dict[str, Any]:
        """The routing config in force, for the admin ``/config_dump`` page."""
        return {"mesh": {"version": self.version, "config": self.config.to_dict()}}

    def pool_counts(self) -> dict[str, dict[str, int]]:
        """Each cluster's upstream connections, open and idle (admin ``/stats``)."""
        return {name: c.pool_counts() for name, c in sorted(self._clusters.items())}

    def clusters(self) -> list[dict[str, Any]]:
        """Every cluster with its endpoints, for the admin ``/clusters`` page."""
        now = self.clock()
        return [c.report(now) for _, c in sorted(self._clusters.items())]
