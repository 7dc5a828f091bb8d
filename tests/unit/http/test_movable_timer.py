"""``MovableTimer``: one timer per owner, moved per request without new timers."""

from __future__ import annotations

import asyncio

from proxy.http.timer import MovableTimer
from tests.support.engine_front import run


def test_deadline_fires_once_when_due_and_follows_later_moves() -> None:
    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        fired: list[float] = []
        deadline = MovableTimer(loop, lambda: fired.append(loop.time() - start))
        deadline.set_in(0.05)
        await asyncio.sleep(0.02)
        deadline.set_in(0.1)  # moved later: the first timer must not fire it
        await asyncio.sleep(0.2)
        return fired

    fired = run(main())
    assert len(fired) == 1
    assert 0.11 <= fired[0] < 0.2


def test_cleared_deadline_does_not_fire_and_an_earlier_one_does() -> None:
    async def main() -> tuple[list[str], float]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        fired: list[str] = []
        at: list[float] = []

        def expire() -> None:
            fired.append("x")
            at.append(loop.time() - start)

        deadline = MovableTimer(loop, expire)
        deadline.set_in(0.05)
        deadline.clear()
        await asyncio.sleep(0.1)
        assert fired == []
        deadline.set_in(1.0)
        deadline.set_in(0.05)  # moved earlier: needs its own timer
        await asyncio.sleep(0.15)
        deadline.set_in(0.01)
        deadline.cancel()
        await asyncio.sleep(0.05)
        return fired, at[0]

    fired, first = run(main())
    assert fired == ["x"]
    assert 0.14 <= first < 0.3
