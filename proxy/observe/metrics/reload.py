"""The two reload metrics: ``mesh_config_reloads_total{result}`` and ``mesh_config_version``.

``ReloadMetrics`` offers the two calls of ``proxy.reload.store.ReloadObserver``, the
interface the store reports through. The version gauge holds
the load time (unix seconds) of the version in force; a replaced version is set to 0
before its series is dropped, because with ``--workers N`` prometheus-client's
multiprocess files cannot forget a series and ``max`` over workers must not keep it.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

RESULTS = ("ok", "error")  # DESIGN.md §6 mesh_config_reloads_total{result}


class ReloadMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.reloads = Counter(
            "mesh_config_reloads_total",
            "Configuration documents offered after startup (file change or PUT /config), "
            "by result: ok (now in force) or error (rejected: the old one stays).",
            ("result",),
            registry=registry,
        )
        self.version = Gauge(
            "mesh_config_version",
            "Load time (unix seconds) of the configuration in force, labelled with the "
            "first 12 hex digits of its content hash; 0 for a version no longer in force.",
            ("version",),
            registry=registry,
            multiprocess_mode="max",
        )
        for result in RESULTS:  # both series exist from the start, at 0
            self.reloads.labels(result)
        self._current: str | None = None

    def config_reload(self, result: str) -> None:
        self.reloads.labels(result).inc()

    def config_version(self, version: str, loaded_at: float) -> None:
        label = version[:12]
        if self._current is not None and self._current != label:
            self.version.labels(self._current).set(0)
            self.version.remove(self._current)
        self._current = label
        self.version.labels(label).set(loaded_at)
