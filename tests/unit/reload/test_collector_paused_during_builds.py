"""Config builds pause the cyclic collector, and overlapping builds restore it once."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from proxy.reload import store
from proxy.reload.gcpause import gc_paused


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
