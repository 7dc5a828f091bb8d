"""The one place that chooses the event loop: uvloop when installed, asyncio otherwise.

Everything else calls ``run`` so that the choice (and its fallback) is made once and
can be reported by the admin endpoint.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

try:
    import uvloop

    _new_loop: Any = uvloop.new_event_loop
    LOOP_NAME = "uvloop"
except ImportError:  # uvloop is optional: plain asyncio is correct, only slower
    _new_loop = asyncio.new_event_loop
    LOOP_NAME = "asyncio"


def new_event_loop() -> asyncio.AbstractEventLoop:
    loop: asyncio.AbstractEventLoop = _new_loop()
    return loop


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to completion on a fresh loop of the chosen kind."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(main)
