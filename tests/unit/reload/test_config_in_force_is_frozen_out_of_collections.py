"""Once a config is in force it is frozen out of the collector's way; frozen garbage is
reclaimed when the frozen set outgrows its last clean size; only real swaps settle.

The policy runs on a fake collector here; the real one runs in a fresh interpreter
(``gc.freeze`` is process-wide, and this test process must keep collecting).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap

import pytest

from proxy.config import loads_config
from proxy.reload import ConfigStore, Loaded
from proxy.reload.gcfreeze import GROWTH, Collector, Settler
from tests.support.netns import REPO, python_env


class FakeGc:
    """A heap as three numbers: objects alive in the generations, frozen, garbage."""

    def __init__(self, alive: int) -> None:
        self.young = alive  # tracked, alive
        self.cold = 0  # frozen, alive
        self.cold_garbage = 0  # frozen, unreachable cycles: only a collection frees them
        self.calls: list[str] = []

    def collector(self) -> Collector:
        return Collector(self.freeze, self.unfreeze, self.collect, self.frozen, self.tracked)

    def freeze(self) -> None:
        self.calls.append("freeze")
        self.cold += self.young
        self.young = 0

    def unfreeze(self) -> None:
        self.calls.append("unfreeze")
        self.young += self.cold
        self.cold = 0

    def collect(self) -> int:
        self.calls.append("collect")
        freed, self.cold_garbage = self.cold_garbage, 0
        return freed

    def frozen(self) -> int:
        return self.cold + self.cold_garbage

    def tracked(self) -> int:
        return self.young

    def drop_as_cycles(self, n: int) -> None:
        """``n`` frozen objects become unreachable, in cycles."""
        self.cold -= n
        self.cold_garbage += n


def test_the_first_settle_collects_once_then_freezes() -> None:
    heap = FakeGc(alive=1000)
    settler = Settler(heap.collector())
    settler.settle()
    assert heap.calls == ["unfreeze", "collect", "freeze"]
    assert (heap.tracked(), heap.frozen(), settler.clean) == (0, 1000, 1000)


def test_a_swap_within_the_growth_only_freezes() -> None:
    heap = FakeGc(alive=1000)
    settler = Settler(heap.collector())
    settler.settle()
    heap.calls.clear()
    heap.young = 400  # the new config's objects (the old one was freed by refcount)
    settler.settle()
    assert heap.calls == ["freeze"]
    assert (heap.tracked(), heap.frozen(), settler.reclaims) == (0, 1400, 0)


def test_frozen_garbage_past_the_growth_is_collected_and_the_bar_moves() -> None:
    heap = FakeGc(alive=1000)
    settler = Settler(heap.collector())
    settler.settle()
    heap.drop_as_cycles(300)  # e.g. connections alive at a swap, cycles when they ended
    heap.young = 300
    settler.settle()  # 1300 frozen: not yet past 1.5 x 1000
    assert settler.reclaims == 0 and heap.frozen() == 1300
    heap.drop_as_cycles(300)
    heap.young = 300
    heap.calls.clear()
    settler.settle()  # 1600 frozen, 600 of it garbage
    assert heap.calls == ["freeze", "unfreeze", "collect", "freeze"]
    assert settler.reclaims == 1
    assert heap.frozen() == settler.clean == 1000  # what is alive, and nothing else


def test_a_smaller_config_lowers_the_bar() -> None:
    heap = FakeGc(alive=1000)
    settler = Settler(heap.collector())
    settler.settle()
    heap.cold = 200  # a smaller mesh went into force: most of the old one freed
    settler.settle()
    assert settler.clean == 200
    heap.drop_as_cycles(150)
    heap.young = 150  # 350 frozen: past 1.5 x 200, though far below the old 1000
    settler.settle()
    assert settler.reclaims == 1 and heap.frozen() == 200


def test_the_growth_must_leave_room() -> None:
    with pytest.raises(ValueError, match=r"growth 1\.0 must be more than 1"):
        Settler(FakeGc(1).collector(), growth=1.0)
    assert GROWTH > 1


class Quiet:
    def config_reload(self, result: str) -> None: ...

    def config_version(self, version: str, loaded_at: float) -> None: ...


def doc(port: int) -> str:
    endpoints = [{"address": "10.0.0.1", "port": 8080}]
    return json.dumps({"services": [{"name": "a", "port": port, "endpoints": endpoints}]})


class FailsOnce:
    """A subscriber with a bug that shows on the first config it is given."""

    def __init__(self) -> None:
        self.armed = True

    def __call__(self, _: Loaded) -> None:
        if self.armed:
            self.armed = False
            raise RuntimeError("subscriber bug")


def test_only_a_config_that_went_into_force_settles() -> None:
    first = loads_config(doc(80), "first")
    swaps: list[str] = []
    in_force = Loaded(first, first.version, "file", 0.0)
    store = ConfigStore(in_force, Quiet(), on_swap=lambda: swaps.append(store.current.version))
    second = loads_config(doc(81), "second")
    assert store.accept(second, "put").result == "ok"
    assert swaps == [second.version]  # told after the swap: the new one is in force
    assert store.accept(second, "put").result == "unchanged"
    store.subscribe(FailsOnce())
    assert store.accept(loads_config(doc(82), "third"), "put").result == "rejected"
    assert swaps == [second.version]  # the old config was restored: nothing to settle


def test_a_rejected_document_does_not_settle() -> None:
    first = loads_config(doc(80), "first")
    swaps: list[int] = []
    in_force = Loaded(first, first.version, "file", 0.0)
    store = ConfigStore(in_force, Quiet(), on_swap=lambda: swaps.append(1))
    assert asyncio.run(store.offer_text("{", "put", "broken")).result == "rejected"
    assert swaps == []


REAL_GC = textwrap.dedent(
    """
    import gc, json, time
    from proxy.config import loads_config
    from proxy.mesh.runtime import Mesh
    from proxy.reload import ConfigStore, Loaded
    from proxy.reload.gcfreeze import Settler
    from tests.support.config_docs import mesh_doc

    class Quiet:
        def config_reload(self, result): ...
        def config_version(self, version, loaded_at): ...

    first = loads_config(mesh_doc(10), "first")
    mesh = Mesh(first)
    settler = Settler()
    store = ConfigStore(Loaded(first, first.version, "file", 0.0), Quiet())
    store.subscribe(lambda loaded: mesh.apply(loaded.config))
    settler.settle()
    seen = []
    for generation in range(1, 5):
        store.accept(loads_config(mesh_doc(500, generation), "next"), "file")
        settler.settle()  # what the proxy's on_swap schedules for the next loop pass
        seen.append([len(gc.get_objects()), gc.get_freeze_count()])
    grown = settler.reclaims  # 10 services to 500: the first swap may reclaim
    clean = seen[-1][1]
    leaks = []
    for generation in range(5, 9):
        # A fifth of the heap in cycles, alive at the swap (as a busy proxy's
        # connections may be), and garbage right after it: no collection sees it.
        cycles = [[] for _ in range(clean // 5)]
        for c in cycles:
            c.append(c)
        store.accept(loads_config(mesh_doc(500, generation), "next"), "file")
        settler.settle()
        del cycles, c
        leaks.append([gc.get_freeze_count(), settler.reclaims - grown])
    print(json.dumps({"seen": seen, "leaks": leaks}))
    """
)


def test_the_real_collector_skips_the_mesh_and_reclaims_frozen_cycles() -> None:
    got = subprocess.run(
        [sys.executable, "-c", REAL_GC],
        capture_output=True, text=True, timeout=120, cwd=REPO, env=python_env(),
    )  # fmt: skip
    assert got.returncode == 0, got.stderr[-2000:]
    result = json.loads(got.stdout)
    tracked, frozen = zip(*result["seen"], strict=True)
    assert min(frozen) > 40_000  # 500 services' config and mesh state, frozen
    assert max(tracked) < min(frozen) / 10  # what the collector still traverses
    # Old configs go by reference counting: four swaps do not pile them up.
    assert max(frozen) < min(frozen) * 1.2
    # Frozen cycles pile up, a fifth of the heap per swap, until the frozen set is
    # past 1.5 times its clean size: then one settle collects them all.
    after, reclaims = zip(*result["leaks"], strict=True)
    assert reclaims == (0, 0, 1, 1)
    assert after[1] > frozen[-1] * 1.35  # two swaps' cycles kept (frozen garbage)
    # The third's settle reclaimed them (its own cycles were still alive then).
    assert after[2] < frozen[-1] * 1.25
