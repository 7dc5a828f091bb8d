"""Endpoint health gauges and ejection counts, sampled from the mesh's cluster reports.

A worker reads the same report the admin ``/clusters`` page shows and sets
``mesh_upstream_endpoints{service,health}`` (livesum over workers); the growth of each
cluster's ``ejections_total`` and ``overflows`` (per breaker threshold) is added to
``mesh_outlier_ejections_total`` and ``mesh_circuit_breaker_overflows_total``. Off the
request path, and the mesh needs no reference to the metrics.

It samples when there is something to see, never on an idle timer: at start, before
each scrape this worker answers, on a config change, and at most once a second while
traffic flows (``poke``, from the observer's batches and closed TCP connections). An
idle sidecar wakes for nothing (most sidecars of a mesh are idle most of the time).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from proxy.observe.metrics import Metrics

ClusterReport = Callable[[], list[dict[str, Any]]]  # proxy.mesh.Mesh.clusters
SAMPLE_EVERY = 1.0


class ClusterSampler:
    def __init__(self, report: ClusterReport, metrics: Metrics) -> None:
        self.report = report
        self.metrics = metrics
        self._totals: dict[tuple[str, str], int] = {}  # (service, what) → last total
        self._healths: dict[str, set[str]] = {}  # so a state that empties is set to 0
        self._timer: asyncio.TimerHandle | None = None

    def sample(self) -> None:
        seen: set[str] = set()
        for cluster in self.report():
            name = str(cluster["name"])
            seen.add(name)
            counts: dict[str, int] = dict.fromkeys(self._healths.get(name, ()), 0)
            for row in cluster.get("endpoints", []):
                health = str(row.get("health", "unknown"))
                counts[health] = counts.get(health, 0) + 1
            self._set(name, counts)
            # labels() even without growth: the series shows 0 instead of being absent.
            grown = self._grown(name, "ejections", int(cluster.get("ejections_total", 0)))
            self.metrics.ejections.labels(name).inc(grown)
            for kind, total in dict(cluster.get("overflows", {})).items():
                grown = self._grown(name, str(kind), int(total))
                self.metrics.overflows.labels(name, str(kind)).inc(grown)
        for gone in set(self._healths) - seen:  # a service removed by a reload
            self._set(gone, dict.fromkeys(self._healths.pop(gone), 0))
            for key in [k for k in self._totals if k[0] == gone]:
                del self._totals[key]

    def _grown(self, name: str, what: str, total: int) -> int:
        last = self._totals.get((name, what), 0)
        self._totals[(name, what)] = total
        return total - last if total >= last else total  # a rebuilt cluster restarts at 0

    def _set(self, name: str, counts: Mapping[str, int]) -> None:
        if name in self._healths or counts:
            self._healths.setdefault(name, set()).update(counts)
        self.metrics.endpoint_health(name, counts)

    def poke(self) -> None:
        """Something happened: sample within ``SAMPLE_EVERY`` (one timer at a time)."""
        if self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return  # no loop, no traffic: the next scrape samples
            self._timer = loop.call_later(SAMPLE_EVERY, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.sample()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
