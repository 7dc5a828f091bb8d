"""Mutated HTTP/1 byte streams for the differential fuzzer, and the check itself.

An input is a seed case from the corpus plus a few edits: overwrite, insert or delete
bytes (drawn mostly from the bytes HTTP/1 framing turns on: CR, LF, SP, HTAB, NUL,
``:``, ``;``, ``,``, digits, hex letters), repeat a line, or splice another seed's
tail onto it. Edits are plain tuples, so hypothesis (in the suite) and ``random``
(``scripts/fuzz``) draw them alike. ``disagreement`` runs both codecs over the input
in three chunkings and returns what differs, or None; any exception other than a
verdict propagates.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from proxy.http.codec import CODECS
from tests.support.http1_verdict import esc, unesc, verdict

CORPUS = Path(__file__).resolve().parents[1] / "data" / "http1_corpus.json"
SPECIAL = b'\r\n \t\x00:;,0123456789aAfF\x7f\x80\x0b-"=/'
OVERWRITE, INSERT, DELETE, SPLICE, REPEAT_LINE = range(5)
Edit = tuple[int, int, bytes]  # (kind, position, bytes or, for SPLICE, the seed index)


def load_corpus() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = json.loads(CORPUS.read_text())
    return cases


def seeds(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The small cases, without their verdicts: the fuzzer's starting points."""
    return [
        {k: v for k, v in case.items() if k not in ("expect", "id", "class")}
        for case in cases
        if len(unesc(case["data"])) <= 600
    ]


def apply(case: dict[str, Any], edits: list[Edit], pool: list[dict[str, Any]]) -> dict[str, Any]:
    data = bytearray(unesc(case["data"]))
    for kind, position, payload in edits:
        at = position % (len(data) + 1)
        if kind == OVERWRITE and data:
            at = min(at, len(data) - 1)
            data[at : at + len(payload)] = payload[: len(data) - at]
        elif kind == INSERT:
            data[at:at] = payload
        elif kind == DELETE:
            del data[at : at + max(1, len(payload))]
        elif kind == REPEAT_LINE:
            start = data.rfind(b"\n", 0, at) + 1
            end = data.find(b"\n", at)
            data[start:start] = data[start : end + 1 if end >= 0 else len(data)]
        elif kind == SPLICE:
            other = unesc(pool[int.from_bytes(payload or b"\0", "big") % len(pool)]["data"])
            data[at:] = other[position % (len(other) + 1) :]
    return {**case, "data": esc(bytes(data))}


def random_edits(rng: random.Random, pool_size: int) -> list[Edit]:
    edits: list[Edit] = []
    for _ in range(rng.choice((1, 1, 1, 2, 2, 3))):
        kind = rng.choice((OVERWRITE, OVERWRITE, INSERT, INSERT, DELETE, SPLICE, REPEAT_LINE))
        length = rng.choice((1, 1, 1, 2, 3))
        if rng.random() < 0.8:
            payload = bytes(rng.choice(SPECIAL) for _ in range(length))
        else:
            payload = bytes(rng.randrange(256) for _ in range(length))
        if kind == SPLICE:
            payload = rng.randrange(pool_size).to_bytes(2, "big")
        edits.append((kind, rng.randrange(1 << 16), payload))
    return edits


def disagreement(case: dict[str, Any]) -> dict[str, Any] | None:
    """Where the codecs' verdicts on ``case`` differ (per chunking), or None."""
    for how in ("whole", "random", "bytes"):
        verdicts = {name: verdict(factory, case, how) for name, factory in CODECS.items()}
        first, *others = verdicts.values()
        if any(other != first for other in others):
            return {"case": case, "chunking": how, "verdicts": verdicts}
    return None


def main(argv: list[str] | None = None) -> int:
    """``scripts/fuzz``: mutate corpus cases for a time budget; print what disagrees."""
    import argparse
    import time

    parser = argparse.ArgumentParser(prog="scripts/fuzz", description=main.__doc__)
    parser.add_argument("--seconds", type=float, default=300.0, help="time budget")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: time)")
    parser.add_argument("--stop-after", type=int, default=10, help="disagreements to report")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else time.time_ns()
    rng = random.Random(seed)
    pool = seeds(load_corpus())
    tried = found = 0
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline and found < args.stop_after:
        case = apply(rng.choice(pool), random_edits(rng, len(pool)), pool)
        tried += 1
        try:
            different = disagreement(case)
        except Exception as exc:  # a crash is a finding too: report it, keep going
            different = {"case": case, "exception": repr(exc)}
        if different is not None:
            found += 1
            print(json.dumps(different, default=str))
    print(f"seed {seed}: {tried} inputs tried, {found} disagreements")
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
