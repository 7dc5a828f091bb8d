"""Request ids: random version-4 UUID strings without a syscall per request.

``uuid.uuid4()`` reads 16 bytes from ``os.urandom`` (a getrandom syscall) for every
request. Ids only need to be unique, not secret, so a Mersenne Twister seeded from
``os.urandom`` does (2**128 values); it is reseeded in every forked child so that
``--workers`` never hand out the same sequence twice.
"""

from __future__ import annotations

import os
import random

_VERSION_4 = 0x4000 << 64  # the version nibble, set in the 128-bit value
_VARIANT = 0x8000 << 48  # RFC 4122 variant bits
_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_rng = random.Random(os.urandom(32))


def _reseed() -> None:
    _rng.seed(os.urandom(32))


os.register_at_fork(after_in_child=_reseed)


def new_request_id() -> str:
    """A fresh random UUID (version 4, RFC 4122 variant) in its canonical text form."""
    h = f"{(_rng.getrandbits(128) & _CLEAR) | _VERSION_4 | _VARIANT:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
