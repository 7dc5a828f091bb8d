"""Request ids in UUID form (version 4 layout), unique without a syscall per request.

``uuid.uuid4()`` reads 16 bytes from ``os.urandom`` (a getrandom syscall) for every
request; even a seeded PRNG plus formatting costs a few microseconds. An id only has
to be unique, not secret. So each process draws a random 80-bit prefix once, with the
version-4 and RFC 4122 variant bits set, and counts in the last 48 bits from a random
start. Two processes collide only if their prefixes do (74 random bits); one process
repeats an id only after 2**48 requests. A forked child draws a new prefix, so
``--workers`` never share a sequence.
"""

from __future__ import annotations

import itertools
import os
from typing import Final

_COUNTER_MASK: Final = (1 << 48) - 1


def _fresh() -> tuple[str, itertools.count[int]]:
    raw = int.from_bytes(os.urandom(16), "big")
    # The prefix is the UUID's top 80 bits: its version nibble is UUID bits 76-79,
    # its variant bits 62-63, so here 28-31 and 14-15.
    prefix = (raw >> 48) & ~((0xF << 28) | (0x3 << 14))
    prefix |= (0x4 << 28) | (0x2 << 14)  # version 4, variant 10xx
    h = f"{prefix:020x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-", itertools.count(raw & _COUNTER_MASK)


_prefix, _counter = _fresh()


def _reseed() -> None:
    global _prefix, _counter
    _prefix, _counter = _fresh()


os.register_at_fork(after_in_child=_reseed)


def new_request_id() -> str:
    """A fresh id shaped like a version-4 UUID (8-4-4-4-12 lowercase hex)."""
    return f"{_prefix}{next(_counter) & _COUNTER_MASK:012x}"
