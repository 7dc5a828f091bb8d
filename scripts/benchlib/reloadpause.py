"""Collector stalls after a big config swap, without and with the freeze (run by hand).

    python -m scripts.benchlib.reloadpause [--services 10000] [--rounds 3]

Each mode runs in a fresh interpreter: a mesh is built, then ``--rounds`` times a new
``--services`` config is parsed and swapped in through ``ConfigStore`` as the proxy
does (collector paused while building; in the ``frozen`` mode, ``gcfreeze.settle``
after the swap), and then request-shaped allocations run (small dicts and lists, a
few of them cyclic, a sliding window of them kept alive) while ``gc.callbacks`` time
every collection. It prints, per swap, the collections' total and longest time: the
event loop would be stalled for exactly those.
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import time
from typing import Any

MODES = ("paused", "frozen")
CHURN = 200_000  # request-shaped allocations after each swap
WINDOW = 5_000  # of them alive at once


def _churn() -> None:
    alive: list[object] = []
    for i in range(CHURN):
        alive.append({"header": [i]})
        if i % 7 == 0:
            cycle: list[object] = []
            cycle.append(cycle)
            alive.append(cycle)
        if len(alive) > WINDOW:
            del alive[: WINDOW // 2]


def measure(mode: str, services: int, rounds: int) -> list[dict[str, Any]]:
    from prometheus_client import CollectorRegistry

    from proxy.config import loads_config
    from proxy.mesh.runtime import Mesh
    from proxy.observe.metrics import ReloadMetrics
    from proxy.reload import gcfreeze
    from proxy.reload.gcpause import gc_paused
    from proxy.reload.store import ConfigStore, Loaded
    from tests.support.config_docs import mesh_doc

    first = loads_config(mesh_doc(10), "start")
    mesh = Mesh(first)
    in_force = Loaded(first, first.version, "file", time.time())
    store = ConfigStore(in_force, ReloadMetrics(CollectorRegistry()))
    store.subscribe(lambda loaded: mesh.apply(loaded.config))
    settle = gcfreeze.settle if mode == "frozen" else None
    if settle is not None:
        settle()  # at start, as the proxy does before any traffic
    started = 0.0
    pauses: list[float] = []

    def timed(phase: str, info: dict[str, Any]) -> None:
        nonlocal started
        if phase == "start":
            started = time.perf_counter()
        else:
            pauses.append(time.perf_counter() - started)

    gc.callbacks.append(timed)
    out = []
    for round_ in range(rounds):
        with gc_paused():  # as the store's parsing thread does
            config = loads_config(mesh_doc(services, generation=round_ + 1), f"round {round_}")
        store.accept(config, "file")
        del config
        if settle is not None:
            settle()  # the proxy's on_swap: on the loop's next pass
        pauses.clear()
        _churn()
        out.append(
            {
                "collections": len(pauses),
                "total_s": sum(pauses),
                "longest_ms": max(pauses, default=0.0) * 1000,
                "tracked": len(gc.get_objects()),
                "frozen": gc.get_freeze_count(),
            }
        )
    gc.callbacks.remove(timed)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mode", choices=MODES, help="(internal) measure one mode here")
    args = parser.parse_args(argv)
    if args.mode:
        print(json.dumps(measure(args.mode, args.services, args.rounds)))
        return 0
    print(f"collections after each swap of a {args.services:,}-service config")
    for mode in MODES:
        got = subprocess.run(
            [sys.executable, "-m", "scripts.benchlib.reloadpause", "--mode", mode,
             "--services", str(args.services), "--rounds", str(args.rounds)],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        for i, r in enumerate(json.loads(got.stdout)):
            print(
                f"  {mode:7} swap {i + 1}: {r['collections']:4} collections, "
                f"{r['total_s']:.3f} s in all, longest {r['longest_ms']:6.1f} ms; "
                f"tracked {r['tracked']:,}, frozen {r['frozen']:,}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
