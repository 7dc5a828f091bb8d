"""Noticing that a configuration file changed, with one ``stat`` per tick.

``os.stat`` follows symlinks, so it sees the file a path resolves to right now: a
Kubernetes ConfigMap swap (``..data`` re-pointed to a new timestamped directory) or a
rename over the path shows up as a new inode, and is loaded at the next tick. A file
rewritten in place (same inode, new mtime/size) may be caught half-written, so it is
loaded only once two ticks agree. Reading and parsing happen in the store's thread.

A tick happens when inotify says the path's directory (or the directory of the file
it resolves to) changed, plus one more ``interval`` later while an in-place edit
settles: an idle sidecar never wakes for its config. Where inotify is unavailable
the watcher ticks every ``interval`` instead.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from proxy.reload import inotify

log = logging.getLogger("proxy.reload")

DEFAULT_INTERVAL = 0.5  # a change is in force within ~1 s (2 ticks for in-place edits)


@dataclass(frozen=True)
class Fingerprint:
    device: int
    inode: int
    mtime_ns: int
    size: int

    @classmethod
    def of(cls, st: os.stat_result) -> Fingerprint:
        return cls(st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


def fingerprint(path: str) -> Fingerprint | None:
    """The file ``path`` resolves to now, or None when it does not exist (or is unreadable)."""
    try:
        return Fingerprint.of(os.stat(path))
    except OSError:
        return None


class Action(enum.Enum):
    NONE = "none"  # nothing new
    LOAD = "load"  # read and offer the file
    WAIT = "wait"  # changed in place: look again next tick
    MISSING = "missing"  # the path resolves to nothing (the old config stays)


def decide(
    seen: Fingerprint | None, pending: Fingerprint | None, now: Fingerprint | None
) -> Action:
    """Pure: ``seen`` was last offered, ``pending`` was new at the previous tick."""
    if now is None:
        return Action.MISSING
    if now == seen:
        return Action.NONE
    replaced = seen is None or (now.device, now.inode) != (seen.device, seen.inode)
    if replaced or now == pending:
        return Action.LOAD
    return Action.WAIT


class FileWatcher:
    def __init__(
        self,
        path: str,
        on_change: Callable[[], Awaitable[object]],
        seen: Fingerprint | None,
        interval: float = DEFAULT_INTERVAL,
        report_missing: bool = True,
    ) -> None:
        self.path = path
        self.on_change = on_change
        self.seen = seen
        self.interval = interval
        self.report_missing = report_missing
        self._pending: Fingerprint | None = None
        self._missing_reported = False

    def mark(self, seen: Fingerprint) -> None:
        """``seen`` was already taken care of (e.g. this process wrote it)."""
        self.seen = seen

    async def tick(self) -> Action:
        why = ""
        try:
            now: Fingerprint | None = Fingerprint.of(os.stat(self.path))
        except OSError as e:  # gone, or unreadable by the dropped-privilege uid
            now, why = None, e.strerror or str(e)
        action = decide(self.seen, self._pending, now)
        if action is Action.MISSING:
            if self.report_missing and not self._missing_reported:
                log.warning("config %s: %s; the config in force stays", self.path, why)
            self._missing_reported = True
            return action
        self._missing_reported = False
        self._pending = now if action is Action.WAIT else None
        if action is Action.LOAD:
            # Recorded before reading: a change made while we read is seen next tick.
            self.seen = now
            await self.on_change()
        return action

    async def run(self) -> None:
        watch = inotify.watch_dirs(self._directories())
        if watch is None:
            await self._poll()
            return
        loop = asyncio.get_running_loop()
        woken = asyncio.Event()
        loop.add_reader(watch.fd, woken.set)
        woken.set()  # once now: a change made before the watch existed is seen too
        first = True
        try:
            while True:
                await woken.wait()
                woken.clear()
                if not self._concerns(watch.drain()) and not first:
                    continue  # another file of a shared directory
                first = False
                action = await self._safe_tick()
                while action is Action.WAIT:  # changed in place: settled next time?
                    await asyncio.sleep(self.interval)
                    action = await self._safe_tick()
                for directory in self._directories():  # a swap may point elsewhere now
                    watch.add(directory)
        finally:
            loop.remove_reader(watch.fd)
            watch.close()

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self._safe_tick()

    async def _safe_tick(self) -> Action:
        try:
            return await self.tick()
        except Exception:  # a bug in one reload must not end live reloading for good
            log.exception("config %s: reload failed; watching on", self.path)
            return Action.NONE

    def _concerns(self, names: set[str]) -> bool:
        """Whether entries named ``names`` can change what ``path`` resolves to: the
        path's own name, the name of the file it resolves to, a ConfigMap's ``..data``
        link, or the directory itself (an empty name)."""
        mine = {"", "..data", os.path.basename(self.path)}
        mine.add(os.path.basename(os.path.realpath(self.path)))
        return not names.isdisjoint(mine)

    def _directories(self) -> list[str]:
        """Where a change to the file at ``path`` shows: its directory, and the
        directory of the file it resolves to (a ConfigMap's timestamped one)."""
        here = os.path.dirname(os.path.abspath(self.path))
        there = os.path.dirname(os.path.realpath(self.path))
        return [d for d in dict.fromkeys((here, there)) if os.path.isdir(d)]
