"""The outbox holds the writes of one loop pass and sends them, in order, after it."""

from __future__ import annotations

import asyncio

from proxy.http.outbox import Outbox
from tests.support.engine_front import run


class Transport(asyncio.WriteTransport):
    def __init__(self, log: list[tuple[str, bytes]], name: str) -> None:
        super().__init__()
        self.log, self.name, self.closing = log, name, False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.log.append((self.name, bytes(data)))

    def is_closing(self) -> bool:
        return self.closing


def _wire(*names: str) -> tuple[list[tuple[str, bytes]], Outbox, list[Transport]]:
    """An outbox on the running loop, and transports that log what reaches them."""
    log: list[tuple[str, bytes]] = []
    return log, Outbox(asyncio.get_running_loop()), [Transport(log, n) for n in names]


def test_writes_wait_for_the_pass_then_go_out_in_order() -> None:
    async def main() -> None:
        log, box, (a, b) = _wire("a", "b")
        box.send(a, b"1")
        box.send(b, b"2")
        box.send(a, b"3")
        assert log == [] and len(box) == 3  # nothing left before the pass ended
        await asyncio.sleep(0)
        assert log == [("a", b"1"), ("b", b"2"), ("a", b"3")]
        assert len(box) == 0
        box.send(b, b"4")  # a new pass: held again, sent again
        await asyncio.sleep(0)
        assert log[-1] == ("b", b"4")

    run(main())


def test_flush_sends_at_once_and_the_scheduled_pass_finds_nothing_twice() -> None:
    async def main() -> None:
        log, box, (a,) = _wire("a")
        box.send(a, b"head")
        box.flush()
        assert log == [("a", b"head")]
        a.write(b"direct")  # what a caller writes after flush() follows the held bytes
        await asyncio.sleep(0)
        assert log == [("a", b"head"), ("a", b"direct")]

    run(main())


def test_a_transport_aborted_meanwhile_is_skipped() -> None:
    async def main() -> None:
        log, box, (gone, alive) = _wire("gone", "alive")
        box.send(gone, b"x")
        box.send(alive, b"y")
        gone.closing = True
        await asyncio.sleep(0)
        assert log == [("alive", b"y")]

    run(main())


def test_a_transport_that_fails_to_write_does_not_cost_the_others_theirs() -> None:
    class Broken(Transport):
        def write(self, data: bytes | bytearray | memoryview) -> None:
            raise RuntimeError("cannot write after write_eof")

    async def main() -> None:
        log, box, (after,) = _wire("after")
        box.send(Broken(log, "broken"), b"x")
        box.send(after, b"y")
        await asyncio.sleep(0)
        assert log == [("after", b"y")]

    run(main())
