"""The store's swap rules: unchanged documents, failing subscribers, the version gauge."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from proxy.config import loads_config
from proxy.observe.metrics import ReloadMetrics
from proxy.reload import ConfigStore, Loaded
from proxy.reload.store import nothing_loaded
from tests.support.config_docs import reloads, tcp_doc, versions

A, B, C = (loads_config(tcp_doc(f"10.0.0.{i}:80")) for i in (1, 2, 3))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        self.now += 1
        return self.now


def test_accept_swaps_counts_and_moves_the_version_gauge() -> None:
    registry = CollectorRegistry()
    store = ConfigStore(nothing_loaded(999.0), ReloadMetrics(registry), Clock())
    seen: list[str] = []
    store.subscribe(lambda loaded: seen.append(loaded.short))
    assert versions(registry) == {"none": 999.0}
    assert (reloads(registry, "ok"), reloads(registry, "error")) == (0, 0)  # both exist
    first = store.accept(A, "file", "/etc/mesh/mesh.yaml")
    assert (first.result, first.loaded.loaded_at, first.loaded.origin) == (
        "ok",
        1001.0,
        "/etc/mesh/mesh.yaml",
    )
    assert store.accept(A, "put").result == "unchanged"  # same content: nothing happens
    assert store.accept(B, "put").result == "ok"
    assert seen == [A.version[:12], B.version[:12]]
    assert versions(registry) == {B.version[:12]: 1002.0}  # A's series is gone
    assert reloads(registry, "ok") == 2


def test_a_failing_subscriber_rolls_back_and_counts_rejected() -> None:
    registry = CollectorRegistry()
    store = ConfigStore(Loaded(A, A.version, "file", 5.0), ReloadMetrics(registry), Clock())
    applied: list[str] = []

    def first(loaded: Loaded) -> None:
        applied.append(loaded.short)

    def picky(loaded: Loaded) -> None:
        if loaded.config is C:
            raise ValueError("ring hash needs 3 endpoints")

    store.subscribe(first)
    store.subscribe(picky)
    result = store.accept(C, "put")
    assert result.result == "rejected"
    assert result.errors == ("(apply): ValueError: ring hash needs 3 endpoints",)
    assert store.current.version == A.version
    assert applied == [C.version[:12], A.version[:12]]  # switched, then restored
    assert (reloads(registry, "ok"), reloads(registry, "error")) == (0, 1)
    assert versions(registry) == {A.version[:12]: 5.0}
    assert store.last_rejection is not None and store.last_rejection.source == "put"


@pytest.mark.parametrize("source", ["file", "put"])
def test_reject_keeps_current(source: str) -> None:
    registry = CollectorRegistry()
    store = ConfigStore(Loaded(A, A.version, "file", 5.0), ReloadMetrics(registry))
    result = store.reject(["x: bad"], source)
    assert (result.result, result.loaded.version, result.errors) == (
        "rejected",
        A.version,
        ("x: bad",),
    )
    assert store.counts == {"ok": 0, "error": 1}
