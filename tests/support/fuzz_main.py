"""``scripts/fuzz``: every hostile-input target, each for a time budget, with counts.

A target draws an input from a seeded ``random.Random`` and judges it, returning
None or a finding (text); the suite checks the same properties with hypothesis,
bounded. Targets: ``codecs`` (the HTTP/1 codecs' differential check,
``http1_fuzz``), ``config``, ``put``, ``admin``, ``interceptor`` and ``engine``
(``fuzz_*``). Each runs for ``--seconds``; the summary gives the inputs tried and
findings per target; exit 1 when anything was found. A per-input alarm turns a hang
into a finding instead of stopping the run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import random
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from tests.support import (
    fuzz_admin,
    fuzz_config,
    fuzz_engine,
    fuzz_interceptor,
    fuzz_put,
    http1_fuzz,
)
from tests.support.http1_verdict import esc

HANG = 20  # seconds one input may take before it counts as a hang


@dataclass
class Target:
    name: str
    draw: Callable[[random.Random], Any]
    judge: Callable[[Any], str | None]
    show: Callable[[Any], object] = repr


def _codecs() -> Iterator[Target]:
    pool = http1_fuzz.seeds(http1_fuzz.load_corpus())

    def draw(rng: random.Random) -> dict[str, Any]:
        return http1_fuzz.apply(rng.choice(pool), http1_fuzz.random_edits(rng, len(pool)), pool)

    def judge(case: dict[str, Any]) -> str | None:
        found = http1_fuzz.disagreement(case)
        return None if found is None else json.dumps(found, default=str)

    yield Target("codecs", draw, judge, lambda case: case["data"])


def _engine() -> Iterator[Target]:
    rig = fuzz_engine.Rig()
    try:

        def judge(data: bytes) -> str | None:
            found = [rig.verdict(codec, data) for codec in sorted(fuzz_engine.CODECS)]
            return "; ".join(f for f in found if f) or None

        yield Target("engine", fuzz_engine.random_input, judge, esc)
    finally:
        rig.close()


def _simple(name: str, draw: Callable[[random.Random], Any], judge: Callable[..., Any]) -> Any:
    def make() -> Iterator[Target]:
        yield Target(name, draw, judge)

    return make


TARGETS: dict[str, Callable[[], Iterator[Target]]] = {
    "codecs": _codecs,
    "config": _simple("config", fuzz_config.random_input, fuzz_config.verdict),
    "put": _simple("put", fuzz_config.random_input, fuzz_put.verdict),
    "admin": _simple("admin", fuzz_admin.random_input, lambda i: fuzz_admin.verdict(*i)),
    "interceptor": _simple(
        "interceptor", fuzz_interceptor.random_input, lambda i: fuzz_interceptor.verdict(*i)
    ),
    "engine": _engine,
}


class _Hang(Exception):
    pass


@contextlib.contextmanager
def _alarm(seconds: int) -> Iterator[None]:
    def ring(*_: object) -> None:
        raise _Hang(f"no verdict within {seconds} s")

    previous = signal.signal(signal.SIGALRM, ring)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def run_target(
    target: Target, rng: random.Random, seconds: float, stop_after: int
) -> tuple[int, int]:
    tried = found = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and found < stop_after:
        given = target.draw(rng)
        tried += 1
        try:
            with _alarm(HANG):
                finding = target.judge(given)
        except Exception as exc:  # a crash of the check itself is a finding too
            finding = f"{type(exc).__name__}: {exc}"
        if finding is not None:
            found += 1
            print(json.dumps({"target": target.name, "input": target.show(given),
                              "finding": finding}, default=str)[:4000], flush=True)  # fmt: skip
    return tried, found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/fuzz", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--target", action="append", choices=sorted(TARGETS), help="repeatable; default all"
    )
    parser.add_argument("--seconds", type=float, default=300.0, help="time budget per target")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: time)")
    parser.add_argument("--stop-after", type=int, default=10, help="findings per target")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else time.time_ns()
    logging.getLogger("proxy.reload").disabled = True  # every rejected document logs
    totals: list[tuple[str, int, int]] = []
    for name in args.target or list(TARGETS):
        rng = random.Random(f"{seed}-{name}")
        for target in TARGETS[name]():
            tried, found = run_target(target, rng, args.seconds, args.stop_after)
            totals.append((name, tried, found))
            print(f"{name}: {tried} inputs tried, {found} findings", flush=True)
    print(f"seed {seed}: " + ", ".join(f"{n} {t} tried/{f} found" for n, t, f in totals))
    return 1 if any(f for _, _, f in totals) else 0


if __name__ == "__main__":
    raise SystemExit(main())
