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
from prometheus_client import CollectorRegistry

from proxy.config import loads_config
from proxy.observe.metrics import ReloadMetrics
from proxy.reload import ConfigStore, Loaded
from proxy.reload.gcfreeze import GROWTH, RECLAIM_EVERY, Collector, Settler
from tests.support.config_docs import tcp_doc
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

    def free(self, n: int) -> None:
        """``n`` frozen objects freed by reference counting (no collection needed)."""
        self.cold -= n

    def drop_as_cycles(self, n: int) -> None:
        """``n`` frozen objects become unreachable, in cycles."""
        self.cold -= n
        self.cold_garbage += n


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def settler_on(heap: FakeGc, clock: Clock | None = None) -> Settler:
    return Settler(heap.collector(), clock=clock or Clock())


def test_the_first_settle_collects_once_then_freezes() -> None:
    heap = FakeGc(alive=1000)
    settler = settler_on(heap)
    settler.settle()
    assert heap.calls == ["unfreeze", "collect", "freeze"]
    assert (heap.tracked(), heap.frozen(), settler.clean) == (0, 1000, 1000)


def test_a_config_that_grows_is_frozen_without_a_collection() -> None:
    heap = FakeGc(alive=1000)
    clock = Clock()
    settler = settler_on(heap, clock)
    settler.settle()
    heap.calls.clear()
    clock.now = RECLAIM_EVERY * 10
    heap.young = 9000  # 10 services to 10,000: all of it new, and alive
    settler.settle()
    assert heap.calls == ["freeze"]
    assert (heap.tracked(), heap.frozen(), settler.reclaims) == (0, 10_000, 0)


def swaps(heap: FakeGc, settler: Settler, clock: Clock, count: int) -> list[int]:
    """A swap a minute: the config before (300) is freed, a new one (300) and
    connections' objects (200) are alive at the settle, and those connections then
    end in cycles, frozen garbage."""
    reclaims = []
    for _ in range(count):
        heap.free(300)
        heap.young += 300 + 200
        clock.now += 60
        settler.settle()
        reclaims.append(settler.reclaims)
        heap.drop_as_cycles(200)
    return reclaims


def test_frozen_garbage_past_the_growth_is_collected_once() -> None:
    heap = FakeGc(alive=1000)  # the process, with its first config (300)
    clock = Clock()
    settler = settler_on(heap, clock)
    settler.settle()
    clock.now = RECLAIM_EVERY
    # What the settles find frozen: 700 live, and 200 more garbage each time; the
    # sixth finds 1,700, past 1.5 x 1,000.
    assert swaps(heap, settler, clock, 7) == [0, 0, 0, 0, 0, 1, 1]
    assert heap.cold_garbage == 400  # what the two swaps since the reclaim left
    assert settler.clean == 1200  # the 700, the sixth config and its connections


def test_at_most_one_reclaim_in_the_interval() -> None:
    heap = FakeGc(alive=1000)
    clock = Clock()
    settler = settler_on(heap, clock)
    settler.settle()
    clock.now = RECLAIM_EVERY - 8 * 60  # the eighth swap is the hour's
    assert swaps(heap, settler, clock, 9) == [0, 0, 0, 0, 0, 0, 0, 1, 1]
    assert heap.cold_garbage == 400


def test_the_growth_must_leave_room() -> None:
    with pytest.raises(ValueError, match=r"growth 1\.0 must be more than 1"):
        Settler(FakeGc(1).collector(), growth=1.0)
    assert GROWTH > 1


def doc(port: int) -> str:
    return tcp_doc("10.0.0.1:8080", port=port)


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
    metrics = ReloadMetrics(CollectorRegistry())
    store = ConfigStore(in_force, metrics, on_swap=lambda: swaps.append(store.current.version))
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
    metrics = ReloadMetrics(CollectorRegistry())
    store = ConfigStore(in_force, metrics, on_swap=lambda: swaps.append(1))
    assert asyncio.run(store.offer_text("{", "put", "broken")).result == "rejected"
    assert swaps == []


REAL_GC = textwrap.dedent(
    """
    import gc, json
    from proxy.config import loads_config
    from proxy.mesh.runtime import Mesh
    from proxy.reload import ConfigStore, Loaded
    from proxy.reload.gcfreeze import Settler
    from proxy.observe.metrics import ReloadMetrics
    from prometheus_client import CollectorRegistry
    from tests.support.config_docs import mesh_doc

    first = loads_config(mesh_doc(500), "first")
    mesh = Mesh(first)
    settler = Settler(every=0.0)  # reclaims due as soon as the count says so
    store = ConfigStore(
        Loaded(first, first.version, "file", 0.0), ReloadMetrics(CollectorRegistry())
    )
    store.subscribe(lambda loaded: mesh.apply(loaded.config))
    del first
    settler.settle()
    seen = []
    for generation in range(1, 5):
        store.accept(loads_config(mesh_doc(500, generation), "next"), "file")
        settler.settle()  # what the proxy's on_swap schedules for the next loop pass
        seen.append([len(gc.get_objects()), gc.get_freeze_count(), settler.reclaims])
    in_force = seen[-1][1]
    leaks = []
    for generation in range(5, 13):
        # A fifth of the frozen heap in cycles, alive at the swap (as a busy proxy's
        # connections may be), garbage right after it: no collection sees it.
        cycles = [[] for _ in range(in_force // 5)]
        for c in cycles:
            c.append(c)
        store.accept(loads_config(mesh_doc(500, generation), "next"), "file")
        settler.settle()
        del cycles, c
        leaks.append([gc.get_freeze_count() - in_force, settler.reclaims])
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
    tracked, frozen, reclaims = zip(*result["seen"], strict=True)
    assert min(frozen) > 40_000  # 500 services' config and mesh state, frozen
    assert max(tracked) < min(frozen) / 10  # what the collector still traverses
    # Old configs go by reference counting: four swaps neither pile them up nor
    # call for a collection.
    assert max(frozen) < min(frozen) * 1.1 and reclaims == (0, 0, 0, 0)
    # Frozen cycles pile up, a fifth of the heap a swap, until what a settle finds
    # frozen is past 1.5 times the count after the last collection: then that settle
    # collects them, and only its own swap's cycles (alive at it) stay frozen.
    piled, reclaimed = zip(*result["leaks"], strict=True)
    step = frozen[-1] // 5
    assert reclaimed[0] == 0 and reclaimed[-1] >= 1, (piled, reclaimed)
    assert piled[1] > piled[0] + step * 0.9  # piling up, uncollected
    first = reclaimed.index(1)
    assert piled[first] < step * 1.1 < piled[first - 1], (piled, reclaimed)
