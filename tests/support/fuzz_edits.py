"""Byte-level mutations shared by the hostile-input fuzz targets (``tests.support.fuzz_*``).

An input is a seed (a valid document or request) plus a few edits, each a plain
tuple ``(kind, position, payload)``: overwrite, insert or delete bytes, repeat a line,
or splice another seed's tail on. Plain tuples let hypothesis (in the suite) and
``random`` (``scripts/fuzz``) draw them alike, as ``http1_fuzz`` does for the codecs.
Each target names the bytes its grammar turns on (``special``): most payloads come
from them, the rest are arbitrary bytes.
"""

from __future__ import annotations

import random

from hypothesis import strategies as st

OVERWRITE, INSERT, DELETE, REPEAT_LINE, SPLICE, REPEAT = range(6)
KINDS = (OVERWRITE, INSERT, DELETE, REPEAT_LINE, SPLICE, REPEAT)
Edit = tuple[int, int, bytes]  # (kind, position, bytes; for SPLICE the seed index)


def mutate(data: bytes, edits: list[Edit], pool: list[bytes]) -> bytes:
    out = bytearray(data)
    for kind, position, payload in edits:
        at = position % (len(out) + 1)
        if kind == OVERWRITE and out:
            at = min(at, len(out) - 1)
            out[at : at + len(payload)] = payload[: len(out) - at]
        elif kind == INSERT:
            out[at:at] = payload
        elif kind == DELETE:
            del out[at : at + max(1, len(payload))]
        elif kind == REPEAT_LINE:
            start = out.rfind(b"\n", 0, at) + 1
            end = out.find(b"\n", at)
            out[start:start] = out[start : end + 1 if end >= 0 else len(out)]
        elif kind == SPLICE:
            other = pool[int.from_bytes(payload or b"\0", "big") % len(pool)]
            out[at:] = other[position % (len(other) + 1) :]
        elif kind == REPEAT:  # the payload many times: long lines, deep nesting, big numbers
            out[at:at] = payload * (64 << (position % 8))
    return bytes(out)


def strategy(special: bytes, pool_size: int) -> st.SearchStrategy[list[Edit]]:
    """Hypothesis's way of drawing what ``random_edits`` draws."""
    payload = st.one_of(
        st.lists(st.sampled_from(list(special)), min_size=1, max_size=4).map(bytes),
        st.binary(min_size=1, max_size=4),
    )
    edit = st.tuples(st.sampled_from(KINDS), st.integers(0, 1 << 16), payload)
    splice = st.tuples(
        st.just(SPLICE), st.integers(0, 1 << 16), st.integers(0, pool_size - 1).map(_index)
    )
    return st.lists(st.one_of(edit, splice), min_size=1, max_size=4)


def _index(i: int) -> bytes:
    return i.to_bytes(2, "big")


def random_edits(rng: random.Random, special: bytes, pool_size: int) -> list[Edit]:
    edits: list[Edit] = []
    for _ in range(rng.choice((1, 1, 2, 2, 3, 4))):
        kind = rng.choice((OVERWRITE, OVERWRITE, INSERT, INSERT, DELETE, REPEAT_LINE, SPLICE))
        if rng.random() < 0.05:
            kind = REPEAT
        length = rng.choice((1, 1, 1, 2, 3, 4))
        if rng.random() < 0.8:
            payload = bytes(rng.choice(special) for _ in range(length))
        else:
            payload = bytes(rng.randrange(256) for _ in range(length))
        if kind == SPLICE:
            payload = _index(rng.randrange(pool_size))
        edits.append((kind, rng.randrange(1 << 16), payload))
    return edits
