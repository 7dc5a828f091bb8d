"""Per-request steps through the real engine: a route's ``fault`` delays or aborts a
share of its requests (Istio's HTTPFaultInjection), with Envoy's ``DI``/``FI`` flags.

The shares are drawn from the dispatcher's seeded random source, so 0 % and 100 %
are exact and a fractional share is checked as a count over many requests.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from proxy.config.model import Fault, FaultAbort, FaultDelay
from proxy.core.flags import Flag
from proxy.http.model import RequestHead
from proxy.mesh.dispatch import RequestState
from proxy.mesh.observer import NULL_WATCH
from proxy.mesh.steps import DIRECT, steps_for
from proxy.mesh.steps.deadline import expired_on_arrival
from proxy.mesh.steps.fault import FaultStep
from proxy.policy import Deadline
from tests.support.engine_front import run
from tests.support.mesh_front import Backend, config, mesh_front, service

HEAD = RequestHead("GET", "/", "svc", "1.1", "id", ())


def _routed(fault: dict[str, Any], endpoint: dict[str, Any]) -> dict[str, Any]:
    return service("svc", [endpoint], routes=[{"fault": fault, "destinations": [{}]}])


def _state() -> RequestState:
    return RequestState(NULL_WATCH, Deadline(None), "GET")


def test_abort_on_every_request_answers_the_status_with_fi_and_sends_nothing(codec: str) -> None:
    async def main() -> None:
        up = await Backend("up").start()
        cfg = config([_routed({"abort": {"http_status": 418, "percent": 100}}, up.endpoint)])
        async with mesh_front(cfg, codec=codec) as front:
            got = [await front.request("/x") for _ in range(3)]
            records = front.records
        await up.close()
        assert [r.status for r in got] == [418] * 3
        assert b"FI" in got[0].body
        assert [(r.status, r.flag, r.attempts) for r in records] == [
            (418, Flag.FAULT_INJECTED, 0)
        ] * 3
        assert up.seen == []

    run(main())


def test_delay_holds_the_request_then_forwards_it_with_di(codec: str) -> None:
    async def main() -> None:
        up = await Backend("up").start()
        fault = {"delay": {"fixed": "150ms", "percent": 100}}
        async with mesh_front(config([_routed(fault, up.endpoint)]), codec=codec) as front:
            started = time.monotonic()
            got = await front.request("/slow")
            took = time.monotonic() - started
            (record,) = front.records
        await up.close()
        assert (got.status, got.body) == (200, b"up")
        assert took >= 0.15
        assert (record.flag, record.attempts) == (Flag.DELAY_INJECTED, 1)
        assert [s.path for s in up.seen] == ["/slow"]

    run(main())


def test_delay_and_abort_together_answer_the_abort_after_the_delay(codec: str) -> None:
    async def main() -> None:
        up = await Backend("up").start()
        fault = {
            "delay": {"fixed": "100ms", "percent": 100},
            "abort": {"http_status": 503, "percent": 100},
        }
        async with mesh_front(config([_routed(fault, up.endpoint)]), codec=codec) as front:
            started = time.monotonic()
            got = await front.request("/")
            took = time.monotonic() - started
            again = await front.request("/")  # the connection logic keeps working
        await up.close()
        assert (got.status, again.status) == (503, 503)
        assert took >= 0.1
        assert [r.flag for r in front.records] == [Flag.FAULT_INJECTED] * 2
        assert up.seen == []

    run(main())


def test_zero_percent_never_fires_and_a_route_without_fault_has_only_the_arrival_check(
    codec: str,
) -> None:
    async def main() -> None:
        up = await Backend("up").start()
        fault = {
            "abort": {"http_status": 500, "percent": 0},
            "delay": {"fixed": "5s", "percent": 0},
        }
        async with mesh_front(config([_routed(fault, up.endpoint)]), codec=codec) as front:
            got = [await asyncio.wait_for(front.request("/"), 2) for _ in range(5)]
        await up.close()
        assert [r.status for r in got] == [200] * 5
        assert [r.flag for r in front.records] == [Flag.NONE] * 5

    run(main())
    plain = config([service("svc", [{"address": "10.0.0.1", "port": 80}])])
    route = plain.services[0].default_route
    assert steps_for(route) == (expired_on_arrival,) == DIRECT


def test_a_fractional_share_fires_about_that_often() -> None:
    step = FaultStep(Fault(abort=FaultAbort(503, 25.0)))
    rng = random.Random(1)
    fired = 0
    for _ in range(4000):
        state = _state()
        step(state, HEAD, 0.0, rng)
        fired += state.reply is not None
    assert 900 <= fired <= 1100  # 25 % of 4,000, within ~3.6 standard deviations


def test_fault_step_sets_the_delay_and_flag_and_keeps_the_reply_for_after() -> None:
    state = _state()
    FaultStep(Fault(FaultDelay(0.05, 100.0), FaultAbort(502, 100.0)))(
        state, HEAD, 0.0, random.Random()
    )
    assert (state.delay, state.flag, state.reply and state.reply.status) == (
        0.05,
        Flag.DELAY_INJECTED,
        502,
    )


def test_a_spent_deadline_is_answered_504_dl_by_the_arrival_step() -> None:
    state = RequestState(NULL_WATCH, Deadline(10.0), "GET")
    expired_on_arrival(state, HEAD, 9.0, random.Random())
    assert state.reply is None
    expired_on_arrival(state, HEAD, 10.5, random.Random())
    assert state.reply is not None and (state.reply.status, state.reply.flag) == (
        504,
        Flag.DEADLINE_EXCEEDED,
    )
