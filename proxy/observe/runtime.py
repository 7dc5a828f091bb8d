"""Telemetry's lifecycle in the proxy process: built once, started with the loop.

``Telemetry`` resolves the workload identity, creates the metrics on the registry,
the access log on stdout and the ``Observer``; it runs the Zipkin exporter task while
``mesh.tracing`` is configured (a reload that changes it replaces the exporter) and
samples the mesh's clusters for the endpoint gauges; it flushes it all at shutdown.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry

from proxy.config.model import MeshConfig, Tracing
from proxy.core.errors import UsageError
from proxy.observe.accesslog import AccessLog, open_stdout_nonblocking
from proxy.observe.clusters import ClusterReport, ClusterSampler
from proxy.observe.exporter import CollectorUrl, ZipkinExporter
from proxy.observe.identity import resolve_workload
from proxy.observe.metrics import Metrics
from proxy.observe.observer import Observer

log = logging.getLogger("proxy.observe")
CLOSE_TIMEOUT = 3.0  # seconds shutdown gives the exporter to send what is queued


class Telemetry:
    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        workload_flag: str = "unknown",
        access_log: bool = True,
        env: Mapping[str, str] = os.environ,
        rng: random.Random | None = None,
        stdout_fd: int = 1,
    ) -> None:
        self.workload = resolve_workload(workload_flag, env)
        self.metrics = Metrics(registry)
        self.access_log: AccessLog | None = None
        self.logging = access_log  # --access-log, and then mesh.access_log of the config
        if access_log:
            fd = open_stdout_nonblocking(stdout_fd)
            self.access_log = AccessLog(fd, self.metrics.log_dropped)
        self.observer = Observer(self.workload, self.metrics, access_log=self.access_log, rng=rng)
        self.tracing: Tracing | None = None
        self._task: asyncio.Task[None] | None = None
        self._retired: set[asyncio.Task[None]] = set()  # replaced exporters still sending
        self._running = False
        self._sampler: ClusterSampler | None = None

    def watch_clusters(self, report: ClusterReport) -> None:
        """Sample endpoint health and ejections from ``report`` (``Mesh.clusters``)."""
        self._sampler = ClusterSampler(report, self.metrics)
        self.observer.on_flush = self._sampler.poke

    def activity(self) -> None:
        """Traffic the observer does not see (a TCP connection closed): the cluster
        gauges may have moved."""
        if self._sampler is not None:
            self._sampler.poke()

    def before_scrape(self) -> None:
        """``/metrics`` is about to render: record what is held back and sample."""
        self.observer.flush()
        if self._sampler is not None:
            self._sampler.sample()

    def apply_config(self, config: MeshConfig) -> None:
        """Follow ``mesh.tracing`` and ``mesh.access_log`` of the config in force."""
        self.observer.flush()  # what finished under the old config is recorded under it
        if self._sampler is not None:
            self._sampler.poke()  # services came or went
        self.logging = self.access_log is not None and config.mesh.access_log
        self.observer.access_log = self.access_log if self.logging else None
        tracing = config.mesh.tracing
        if tracing == self.tracing:
            return
        self._stop_exporter()
        self.tracing = tracing
        exporter = None
        if tracing is not None:
            try:
                url = CollectorUrl.parse(tracing.zipkin_url)
            except UsageError as e:
                log.error("tracing disabled: %s", e)
                url = None
            if url is not None:
                exporter = ZipkinExporter(url, self.metrics)
        self.observer.set_tracing(exporter, tracing.sample_rate if tracing else 0.0)
        if self._running:
            self._start_exporter()

    def start(self) -> None:
        """Called on the running loop, once the listeners are up."""
        self._running = True
        self._start_exporter()
        if self._sampler is not None:
            self._sampler.sample()

    def _start_exporter(self) -> None:
        exporter = self.observer.exporter
        if exporter is not None and self._task is None:
            self._task = asyncio.get_running_loop().create_task(exporter.run(), name="zipkin")
            self._task.add_done_callback(_report_failure)

    def _stop_exporter(self) -> None:
        """The old exporter sends what it holds (bounded by its timeout), then ends."""
        if self.observer.exporter is not None:
            self.observer.exporter.close()
        if self._task is not None:
            self._retired.add(self._task)
            self._task.add_done_callback(self._retired.discard)
        self._task = None

    async def close(self) -> None:
        self.observer.flush()  # requests kept for the next batch are recorded now
        if self._sampler is not None:
            self._sampler.close()
        self._stop_exporter()
        self._running = False
        if self._retired:
            _, late = await asyncio.wait(set(self._retired), timeout=CLOSE_TIMEOUT)
            for task in late:
                task.cancel()
        if self.access_log is not None:
            self.access_log.close()

    def tcp_access_log(self, entry: dict[str, Any]) -> None:
        """The L4 listener's per-connection lines go to the same buffered stdout."""
        if self.logging and self.access_log is not None:
            self.access_log(entry)


def _report_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("zipkin exporter failed", exc_info=task.exception())
