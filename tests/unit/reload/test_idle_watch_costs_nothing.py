"""An idle sidecar never wakes for its config: the watcher sleeps on inotify until the
file's directory changes, and polls every ``interval`` only where inotify is missing.

Most sidecars of a mesh are idle most of the time (issue 14: an idle sidecar costs at
most 0.2 ms of CPU a second), so a periodic ``stat`` per worker is not free at scale.
"""

from __future__ import annotations

import asyncio
import os
import select
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from proxy.config import loads_config
from proxy.observe.metrics import ReloadMetrics
from proxy.reload import Reloader, load_initial
from proxy.reload import inotify as inotify_module
from proxy.reload.inotify import watch_dirs
from proxy.reload.watch import FileWatcher
from tests.support.config_docs import ConfigMapDir, tcp_doc

A, B = tcp_doc("10.0.0.1:80"), tcp_doc("10.0.0.2:80")


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    ticks: list[float] = []
    real = FileWatcher.tick

    async def tick(self: FileWatcher) -> object:
        ticks.append(time.monotonic())
        return await real(self)

    monkeypatch.setattr(FileWatcher, "tick", tick)
    return ticks


async def _until_version(reloader: Reloader, text: str, limit: float = 3.0) -> None:
    started = time.monotonic()
    while reloader.store.current.version != loads_config(text).version:
        assert time.monotonic() - started < limit, "change not applied"
        await asyncio.sleep(0.02)


def test_with_inotify_an_idle_watcher_never_ticks_even_in_a_busy_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticks = _counting(monkeypatch)
    cm = ConfigMapDir(tmp_path, A)
    reloader = Reloader(load_initial(cm.path), ReloadMetrics(CollectorRegistry()))

    async def scenario() -> tuple[int, int]:
        reloader.start()
        await asyncio.sleep(0.2)  # the one tick at start
        settled = len(ticks)
        for n in range(5):  # other files of the same directory: none of its business
            (tmp_path / f"unrelated-{n}").write_text("x")
            await asyncio.sleep(0.3)  # five poll intervals of the old watcher in all
        idle = len(ticks) - settled
        cm.update(B)
        await _until_version(reloader, B)
        await reloader.stop()
        return settled, idle

    settled, idle = asyncio.run(scenario())
    assert settled == 1 and idle == 0
    assert len(ticks) >= 2  # the swap woke it


def test_without_inotify_it_polls_and_still_applies_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticks = _counting(monkeypatch)
    monkeypatch.setattr(inotify_module, "watch_dirs", lambda dirs: None)
    cm = ConfigMapDir(tmp_path, A)
    reloader = Reloader(load_initial(cm.path), ReloadMetrics(CollectorRegistry()))

    async def scenario() -> None:
        reloader.start()
        await asyncio.sleep(1.3)
        cm.update(B)
        await _until_version(reloader, B)
        await reloader.stop()

    asyncio.run(scenario())
    assert len(ticks) >= 3  # every 0.5 s


def test_a_directory_watch_turns_readable_on_a_change_and_drains(tmp_path: Path) -> None:
    watch = watch_dirs([str(tmp_path)])
    assert watch is not None
    try:
        assert select.select([watch.fd], [], [], 0)[0] == []
        (tmp_path / "new").write_text("x")
        os.replace(tmp_path / "new", tmp_path / "mesh.yaml")
        assert select.select([watch.fd], [], [], 1)[0] == [watch.fd]
        assert watch.drain() == {"new", "mesh.yaml"}
        assert select.select([watch.fd], [], [], 0)[0] == []
    finally:
        watch.close()


def test_an_impossible_watch_is_none_so_the_caller_polls(tmp_path: Path) -> None:
    assert watch_dirs([str(tmp_path / "missing")]) is None
