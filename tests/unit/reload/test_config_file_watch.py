"""The --config watcher: ConfigMap symlink swaps, rename-replace, in-place edits, bad docs.

The ConfigMap volume layout is rebuilt in a tmp dir exactly as the kubelet writes it
(``mesh.yaml`` → ``..data/mesh.yaml``, ``..data`` → ``..<timestamp>``; an update
writes a new timestamped dir, a ``..data_tmp`` symlink, and renames it over
``..data``). The watcher runs at its production interval on a real event loop.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from proxy.config import loads_config
from proxy.observe.metrics import ReloadMetrics
from proxy.reload import Action, Fingerprint, Reloader, decide, load_initial
from tests.support.config_docs import BAD_DOC, ConfigMapDir, reloads, tcp_doc, versions

A, B, C = tcp_doc("10.0.0.1:80"), tcp_doc("10.0.0.2:80"), tcp_doc("10.0.0.3:80", "10.0.0.4:80")
FP = Fingerprint(1, 10, 100, 5)


@pytest.mark.parametrize(
    ("seen", "pending", "now", "action"),
    [
        (FP, None, FP, Action.NONE),
        (FP, None, None, Action.MISSING),
        (None, None, FP, Action.LOAD),  # appeared
        (FP, None, Fingerprint(1, 11, 100, 5), Action.LOAD),  # new inode: swapped/renamed
        (FP, None, Fingerprint(2, 10, 100, 5), Action.LOAD),  # other device
        (FP, None, Fingerprint(1, 10, 200, 9), Action.WAIT),  # in place: maybe half-written
        (FP, Fingerprint(1, 10, 200, 9), Fingerprint(1, 10, 200, 9), Action.LOAD),  # settled
        (FP, Fingerprint(1, 10, 200, 9), Fingerprint(1, 10, 300, 12), Action.WAIT),  # still going
    ],
)
def test_decide(
    seen: Fingerprint | None, pending: Fingerprint | None, now: Fingerprint | None, action: Action
) -> None:
    assert decide(seen, pending, now) is action


async def _until(reloader: Reloader, version: str, started: float, limit: float = 2.0) -> float:
    while reloader.store.current.version != version:
        assert time.monotonic() - started < limit, f"not in force within {limit}s"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


def _reloader(path: str, registry: CollectorRegistry) -> Reloader:
    return Reloader(load_initial(path), ReloadMetrics(registry))


def test_configmap_symlink_swap_applied_within_2s(tmp_path: Path) -> None:
    cm = ConfigMapDir(tmp_path, A)
    registry = CollectorRegistry()
    reloader = _reloader(cm.path, registry)
    applied: list[str] = []
    reloader.store.subscribe(lambda loaded: applied.append(loaded.version))
    assert reloader.store.current.version == loads_config(A).version

    async def scenario() -> list[float]:
        reloader.start()
        took = []
        for text in (B, C):
            started = time.monotonic()
            cm.update(text)
            took.append(await _until(reloader, loads_config(text).version, started))
        await reloader.stop()
        return took

    took = asyncio.run(scenario())
    assert all(t < 2.0 for t in took), took
    assert applied == [loads_config(B).version, loads_config(C).version]
    assert reloader.store.current.source == "file"
    assert reloader.store.current.origin == cm.path
    assert reloads(registry, "ok") == 2
    assert reloads(registry, "error") == 0
    current = reloader.store.current
    assert versions(registry) == {current.short: current.loaded_at}


def test_rename_replace_and_in_place_edit(tmp_path: Path) -> None:
    path = tmp_path / "mesh.json"
    path.write_text(A)
    registry = CollectorRegistry()
    reloader = _reloader(str(path), registry)

    async def scenario() -> tuple[float, float]:
        reloader.start()
        started = time.monotonic()
        (tmp_path / "new.json").write_text(B)
        os.replace(tmp_path / "new.json", path)
        renamed = await _until(reloader, loads_config(B).version, started)
        started = time.monotonic()
        with path.open("w") as f:  # same inode: the watcher waits for it to settle
            f.write(C)
        edited = await _until(reloader, loads_config(C).version, started)
        await reloader.stop()
        return renamed, edited

    renamed, edited = asyncio.run(scenario())
    assert renamed < 2.0 and edited < 2.0
    assert reloads(registry, "ok") == 2


def test_invalid_document_rejected_old_kept_then_recovers(tmp_path: Path) -> None:
    cm = ConfigMapDir(tmp_path, A)
    registry = CollectorRegistry()
    reloader = _reloader(cm.path, registry)
    good = reloader.store.current

    async def scenario() -> None:
        reloader.start()
        cm.update(BAD_DOC)
        started = time.monotonic()
        while reloads(registry, "error") < 1:
            assert time.monotonic() - started < 2.0, "bad document not seen within 2s"
            await asyncio.sleep(0.02)
        await asyncio.sleep(1.2)  # a few more ticks: still rejected once, old one in force
        assert reloader.store.current == good
        cm.update(B)
        await _until(reloader, loads_config(B).version, time.monotonic())
        await reloader.stop()

    asyncio.run(scenario())
    assert reloads(registry, "error") == 1
    assert reloads(registry, "ok") == 1
    rejected = reloader.store.last_rejection
    assert rejected is not None and rejected.source == "file"
    assert rejected.errors == (f"{cm.path}:3: services[0].port: must be <= 65535, got 99999",)
    status = reloader.status()["config_status"]
    assert status["last_rejected"]["errors"] == list(rejected.errors)
    assert status["reloads"] == {"ok": 1, "error": 1}
    # The replaced version is dropped from the gauge; only B's remains.
    assert set(versions(registry)) == {loads_config(B).version[:12]}


def test_file_removed_keeps_config_and_comes_back(tmp_path: Path) -> None:
    path = tmp_path / "mesh.json"
    path.write_text(A)
    registry = CollectorRegistry()
    reloader = _reloader(str(path), registry)

    async def scenario() -> None:
        reloader.start()
        path.unlink()
        await asyncio.sleep(1.1)
        assert reloader.store.current.version == loads_config(A).version
        path.write_text(B)
        await _until(reloader, loads_config(B).version, time.monotonic())
        await reloader.stop()

    asyncio.run(scenario())
    assert (reloads(registry, "ok"), reloads(registry, "error")) == (1, 0)
