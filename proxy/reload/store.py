"""The configuration in force, and the one gate every new document passes through.

A document (from the watched file or ``PUT /config``) is decoded and validated in a
worker thread, off the event loop, where ``prepare`` also builds what it can ahead of
the swap; only a valid one reaches ``accept``, which swaps it in synchronously by
calling every subscriber in turn (the L4 router, the mesh), so no request ever sees
half of it. A rejected document leaves the old one in force and is logged and
counted; so is a subscriber that fails, after the old one is restored.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from proxy.config import ConfigError, MeshConfig, empty_config, load_config, loads_config
from proxy.reload.gcpause import gc_paused

log = logging.getLogger("proxy.reload")

NO_VERSION = "none"  # what /config_dump has always shown when no --config was given


class ReloadObserver(Protocol):
    """What the store reports to (``proxy.observe.metrics.ReloadMetrics`` in the proxy)."""

    def config_reload(self, result: str) -> None: ...

    def config_version(self, version: str, loaded_at: float) -> None: ...


@dataclass(frozen=True)
class Loaded:
    """One configuration in force: what it is, where it came from, and when."""

    config: MeshConfig
    version: str  # MeshConfig.version (sha256 hex), or "none" before any config
    source: str  # "none" | "file" | "put"
    loaded_at: float  # unix seconds
    origin: str | None = None  # the file it was read from (None for PUT)

    @property
    def short(self) -> str:
        return self.version[:12] if self.version != NO_VERSION else NO_VERSION


@dataclass(frozen=True)
class Rejection:
    source: str
    origin: str | None
    errors: tuple[str, ...]
    at: float


@dataclass(frozen=True)
class OfferResult:
    """What became of one offered document (the watched file or PUT /config)."""

    result: str  # "ok" | "unchanged" | "rejected"
    loaded: Loaded  # in force after this offer
    errors: tuple[str, ...] = ()


Subscriber = Callable[[Loaded], None]


def _hashed(parse: Callable[..., MeshConfig], *args: str) -> MeshConfig:
    """Parse, and compute the content hash in the same thread (it is not free either)."""
    with gc_paused():  # see proxy.reload.gcpause: the collector would stall the loop
        config = parse(*args)
        _ = config.version  # a cached_property: computed once, here
    return config


def nothing_loaded(now: float) -> Loaded:
    return Loaded(empty_config(), NO_VERSION, "none", now)


class ConfigStore:
    def __init__(
        self,
        initial: Loaded,
        observer: ReloadObserver,
        clock: Callable[[], float] = time.time,
        on_swap: Callable[[], None] | None = None,
        prepare: Callable[[MeshConfig], object] | None = None,
    ) -> None:
        self.current = initial
        self.observer = observer
        self.clock = clock
        # Run in the parsing thread for a config that differs from the one in force,
        # so that its swap on the loop has less to do (the proxy: Mesh.prepare).
        # Raising rejects the document, nothing changed.
        self.prepare = prepare
        # Told after each config that went into force, once the old one is let go,
        # with the collector still paused (the proxy: proxy.reload.gcfreeze.settle).
        self.on_swap = on_swap
        self.last_rejection: Rejection | None = None
        self.counts = {"ok": 0, "error": 0}
        self._subscribers: list[Subscriber] = []
        observer.config_version(initial.short, initial.loaded_at)

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    def accept(self, config: MeshConfig, source: str, origin: str | None = None) -> OfferResult:
        """Swap ``config`` in (synchronously: no await between subscribers)."""
        if config.version == self.current.version:
            return OfferResult("unchanged", self.current)
        previous = self.current
        loaded = Loaded(config, config.version, source, self.clock(), origin)
        try:
            with gc_paused():
                self._publish(loaded)
        except Exception as e:  # a subscriber bug must not leave the proxy half-switched
            log.exception(
                "config %s from %s: applying failed; restoring %s",
                loaded.short,
                source,
                previous.short,
            )
            self._publish(previous)
            return self.reject([f"(apply): {type(e).__name__}: {e}"], source, origin)
        self.current = loaded
        self.counts["ok"] += 1
        if self.on_swap is not None:
            del previous  # the old config's last reference here: gone before the hook
            with gc_paused():
                self.on_swap()
        self.observer.config_reload("ok")
        self.observer.config_version(loaded.short, loaded.loaded_at)
        log.info(
            "config %s from %s%s is in force (%d services)",
            loaded.short,
            source,
            f" {origin}" if origin else "",
            len(config.services),
        )
        return OfferResult("ok", loaded)

    def reject(self, errors: list[str], source: str, origin: str | None = None) -> OfferResult:
        self.last_rejection = Rejection(source, origin, tuple(errors), self.clock())
        self.counts["error"] += 1
        self.observer.config_reload("error")
        log.error(
            "config from %s%s rejected (%s stays in force): %s",
            source,
            f" {origin}" if origin else "",
            self.current.short,
            "; ".join(errors),
        )
        return OfferResult("rejected", self.current, tuple(errors))

    def _publish(self, loaded: Loaded) -> None:
        for subscriber in self._subscribers:
            subscriber(loaded)

    def _prepared(self, parse: Callable[..., MeshConfig], *args: str) -> MeshConfig:
        """In the executor thread: parse and hash, then prepare a config that is new
        (the callers hold ``gc_paused`` around all of it, and the swap after it)."""
        config = _hashed(parse, *args)
        if self.prepare is not None and config.version != self.current.version:
            try:
                self.prepare(config)
            except Exception as e:  # the message a failed swap would have given
                raise ConfigError([f"(apply): {type(e).__name__}: {e}"]) from e
        return config

    # The collector stays paused from the parse to the swap and its hook: resumed in
    # between, its first pass would traverse every object the new config is made of,
    # on the loop (0.14 s for 10,000 services), before the hook could freeze them.

    async def offer_text(self, text: str, source: str, label: str) -> OfferResult:
        """Validate ``text`` in a thread; ``label`` prefixes its errors (e.g. PUT /config)."""
        loop = asyncio.get_running_loop()
        with gc_paused():
            try:
                config = await loop.run_in_executor(None, self._prepared, loads_config, text, label)
            except ConfigError as e:
                return self.reject(e.errors, source)
            return self.accept(config, source)

    async def offer_file(self, path: str, source: str) -> OfferResult:
        loop = asyncio.get_running_loop()
        with gc_paused():
            try:
                config = await loop.run_in_executor(None, self._prepared, load_config, path)
            except ConfigError as e:
                return self.reject(e.errors, source, path)
            return self.accept(config, source, path)

    async def parse_text(self, text: str, label: str) -> MeshConfig | list[str]:
        """Validated, and prepared for ``accept`` (the caller decides where the document
        goes next; hold ``gc_paused`` from before this to after ``accept``)."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(None, self._prepared, loads_config, text, label)
        except ConfigError as e:
            return e.errors
