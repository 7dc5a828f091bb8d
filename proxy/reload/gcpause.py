"""The cyclic garbage collector paused while a big config is built, then resumed.

Decoding, validating and swapping in a mesh of 10,000 services makes millions of
objects that all survive. Each of them counts towards the collector's thresholds, so
it runs full collections over the whole growing heap again and again, and it holds
the interpreter lock while it does: measured here, 2 of the 2.7 s a 10,000-service
swap took on the event loop, and most of the admin port's stall during an 11 MB
PUT /config. Nothing cyclic is made by a build, so nothing is lost by pausing.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

_lock = threading.Lock()
_holders = 0  # builds under way (the watch thread and a PUT may overlap)
_was_on = True  # the collector's state when the first of them began


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No automatic collection inside; the collector is back as it was once the last
    overlapping build ends."""
    global _holders, _was_on
    with _lock:
        if _holders == 0:
            _was_on = gc.isenabled()
        _holders += 1
        gc.disable()
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0 and _was_on:
                gc.enable()
