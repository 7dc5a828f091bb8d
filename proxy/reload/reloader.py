"""Everything that keeps the configuration live, bundled for the server.

The server builds one ``Reloader`` per process: the store (with its metrics), a
watcher on ``--config`` when there is one, and with ``--workers N`` the PUT state file
watcher. ``start`` puts the watchers on the loop, ``status`` is /config_dump's view.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from proxy.admin.httpmini import Handler
from proxy.config import ConfigError, MeshConfig, load_config
from proxy.core.errors import UsageError
from proxy.reload.put import PutFanout, put_config_handler
from proxy.reload.store import ConfigStore, Loaded, ReloadObserver, nothing_loaded
from proxy.reload.watch import DEFAULT_INTERVAL, FileWatcher, Fingerprint, fingerprint


@dataclass(frozen=True)
class Initial:
    loaded: Loaded
    seen: Fingerprint | None  # the file as it was just before it was read


def load_initial(path: str | None) -> Initial:
    """The startup config: a bad or missing file is a usage error (exit 2), as before."""
    if path is None:
        return Initial(nothing_loaded(time.time()), None)
    seen = fingerprint(path)  # before reading: a change made meanwhile is seen later
    try:
        config = load_config(path)
    except ConfigError as e:
        raise UsageError(f"--config {path}: " + "; ".join(e.errors)) from e
    return Initial(Loaded(config, config.version, "file", time.time(), path), seen)


def _utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Reloader:
    def __init__(
        self,
        initial: Initial,
        observer: ReloadObserver,
        state_dir: str | None = None,
        interval: float = DEFAULT_INTERVAL,
        on_swap: Callable[[], None] | None = None,
        prepare: Callable[[MeshConfig], object] | None = None,
    ) -> None:
        self.store = ConfigStore(initial.loaded, observer, on_swap=on_swap, prepare=prepare)
        self.watchers: list[FileWatcher] = []
        path = initial.loaded.origin
        if path is not None:
            self.watchers.append(
                FileWatcher(
                    path, lambda: self.store.offer_file(path, "file"), initial.seen, interval
                )
            )
        self.fanout = None if state_dir is None else PutFanout(state_dir, self.store, interval)
        if self.fanout is not None:
            self.watchers.append(self.fanout.watcher)
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def put_handler(self) -> Handler:
        return put_config_handler(self.store, self.fanout)

    def start(self) -> None:
        for watcher in self.watchers:
            self._tasks.append(asyncio.create_task(watcher.run(), name=f"watch {watcher.path}"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    def status(self) -> dict[str, Any]:
        """What /config_dump shows about the config in force and the last rejection."""
        current, rejected = self.store.current, self.store.last_rejection
        return {
            "config_status": {
                "version": current.short,
                "sha256": current.version,
                "source": current.source,
                "origin": current.origin,
                "loaded_at": current.loaded_at,
                "loaded_at_utc": _utc(current.loaded_at),
                "reloads": dict(self.store.counts),
                "last_rejected": None
                if rejected is None
                else {
                    "source": rejected.source,
                    "origin": rejected.origin,
                    "at_utc": _utc(rejected.at),
                    "errors": list(rejected.errors),
                },
            },
            "config": current.config.to_dict(),
        }
