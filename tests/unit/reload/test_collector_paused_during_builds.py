"""Config builds pause the cyclic collector, and overlapping builds restore it once; an
offered document holds the pause from its parse to its swap."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

from proxy.config import MeshConfig, loads_config
from proxy.observe.metrics import ReloadMetrics
from proxy.reload import ConfigStore, Loaded, store
from proxy.reload.gcpause import gc_paused
from tests.support.config_docs import tcp_doc


@pytest.fixture
def collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_overlapping_builds_resume_the_collector_only_after_the_last(collector_on: None) -> None:
    outer = gc_paused()
    outer.__enter__()
    assert not gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()  # the outer build is still under way
    outer.__exit__(None, None, None)
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off() -> None:
    was = gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        if was:
            gc.enable()


def test_parsing_a_document_runs_with_the_collector_paused(collector_on: None) -> None:
    seen: list[bool] = []

    def parse(text: str, label: str) -> object:
        seen.append(gc.isenabled())
        return type("Parsed", (), {"version": "v"})()

    store._hashed(parse, "doc", "label")  # type: ignore[arg-type]
    assert seen == [False] and gc.isenabled()


def test_the_collector_stays_paused_from_the_parse_to_the_swap_hook(collector_on: None) -> None:
    """Resumed in between, its first pass would traverse the new config on the loop."""
    seen: dict[str, bool] = {}
    first = loads_config(tcp_doc("10.0.0.1:1", port=80), "first")

    async def main() -> None:
        loop = asyncio.get_running_loop()

        def prepare(_: MeshConfig) -> None:
            seen["prepare"] = gc.isenabled()
            # Runs on the loop once this thread is done, before the offer resumes.
            loop.call_soon_threadsafe(lambda: seen.setdefault("between", gc.isenabled()))

        store = ConfigStore(
            Loaded(first, first.version, "file", 0.0),
            ReloadMetrics(CollectorRegistry()),
            on_swap=lambda: seen.setdefault("hook", gc.isenabled()),
            prepare=prepare,
        )
        store.subscribe(lambda _: seen.setdefault("swap", gc.isenabled()))
        assert (await store.offer_text(tcp_doc("10.0.0.1:1", port=81), "put", "PUT")).result == "ok"

    asyncio.run(main())
    assert seen == {"prepare": False, "between": False, "swap": False, "hook": False}
    assert gc.isenabled()
