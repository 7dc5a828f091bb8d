"""The retry loop: a different endpoint after a failure, the budget, deadlines, per-try timeouts."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from proxy.core.flags import Flag
from proxy.policy.deadline import TIMER_SLACK
from tests.support.engine_front import run
from tests.support.mesh_front import Backend, config, mesh_front, refused_port, service


def _policy(**retries: Any) -> dict[str, Any]:
    # round_robin starts with the first endpoint listed: the failing one in these tests.
    return {"load_balancer": "round_robin", "retries": {"attempts": 2, **retries}}


def test_refused_connect_is_retried_on_another_endpoint(codec: str) -> None:
    async def main() -> None:
        good = await Backend("good").start()
        dead = {"address": "127.0.0.1", "port": refused_port()}
        cfg = config([service("svc", [dead, good.endpoint], policy=_policy())])
        async with mesh_front(cfg, codec=codec) as front:
            resp = await front.request("/r")
            post = await front.request("/p", method="POST", body=b"data")
        await good.close()
        assert (resp.status, resp.body) == (200, b"good")
        # never reached the app: even a POST may go elsewhere
        assert (post.status, post.body) == (200, b"good")
        assert front.records[0].attempts == 2
        assert good.seen[0].headers["x-mesh-attempt"] == "2"
        assert front.records[0].endpoint == ("127.0.0.1", good.port)

    run(main())


def test_503_is_retried_elsewhere_for_get_but_not_for_post(codec: str) -> None:
    async def main() -> None:
        bad, good = await Backend("bad", status=503).start(), await Backend("good").start()
        cfg = config([service("svc", [bad.endpoint, good.endpoint], policy=_policy())])
        async with mesh_front(cfg, codec=codec) as front:
            get = await front.request("/g")
        async with mesh_front(cfg, codec=codec) as fresh:  # round robin starts over: bad first
            post = await fresh.request("/p", method="POST", body=b"x")
        await bad.close()
        await good.close()
        assert (get.status, get.body) == (200, b"good")
        assert [(s.path, s.headers["x-mesh-attempt"]) for s in bad.seen] == [
            ("/g", "1"),
            ("/p", "1"),
        ]
        assert [(s.path, s.headers["x-mesh-attempt"]) for s in good.seen] == [("/g", "2")]
        assert (post.status, post.body) == (503, b"bad")  # the app saw it: not replayed
        assert [r.attempts for r in front.records + fresh.records] == [2, 1]

    run(main())


def test_503_not_listed_in_retry_on_is_final(codec: str) -> None:
    async def main() -> None:
        bad, good = await Backend("bad", status=503).start(), await Backend("good").start()
        policy = _policy(retry_on=["connect-failure", "reset"])
        cfg = config([service("svc", [bad.endpoint, good.endpoint], policy=policy)])
        async with mesh_front(cfg, codec=codec) as front:
            resp = await front.request("/g")
        await bad.close()
        await good.close()
        assert (resp.status, resp.body) == (503, b"bad")
        assert not good.seen

    run(main())


def test_an_empty_budget_stops_retries(codec: str) -> None:
    async def main() -> None:
        good = await Backend("good").start()
        dead = {"address": "127.0.0.1", "port": refused_port()}
        policy = _policy(budget={"ratio": 0, "min_per_second": 0})
        cfg = config([service("svc", [dead, good.endpoint], policy=policy)])
        async with mesh_front(cfg, codec=codec) as front:
            resp = await front.request("/r")
        await good.close()
        assert resp.status == 503 and b"UF" in resp.body
        assert front.records[0].flag is Flag.UPSTREAM_CONNECT_FAILURE
        assert front.records[0].attempts == 1
        assert not good.seen

    run(main())


def test_deadline_from_the_caller_ends_in_504_dl_without_another_attempt(codec: str) -> None:
    async def main() -> None:
        slow, other = await Backend("slow", delay=1.0).start(), await Backend("other").start()
        policy = _policy(retry_on=["5xx", "timeout", "reset"])
        cfg = config([service("svc", [slow.endpoint, other.endpoint], policy=policy)])
        async with mesh_front(cfg, codec=codec) as front:
            started = time.monotonic()
            resp = await front.request("/d", headers=["x-mesh-timeout-ms: 300"])
            took = time.monotonic() - started
        await slow.close()
        await other.close()
        assert resp.status == 504 and b"DL" in resp.body
        assert front.records[0].flag is Flag.DEADLINE_EXCEEDED
        assert 0.25 < took < 0.9
        assert not other.seen  # no retry once the deadline passed
        assert 200 <= int(slow.seen[0].headers["x-mesh-timeout-ms"]) <= 300

    run(main())


def test_a_timeout_that_fires_a_few_ms_early_against_the_deadline_is_still_dl(codec: str) -> None:
    """Timers run on the loop's coarse clock, deadlines on the monotonic one: when the
    timer wins by a few ms, the request has still run out of time (no UT, no retry)."""
    base = time.monotonic()

    def lagging() -> float:  # slow: the 300 ms timer fires with 0.9 * TIMER_SLACK left
        return base + (time.monotonic() - base) * (1 - 0.9 * TIMER_SLACK / 0.3)

    async def main() -> None:
        slow, other = await Backend("slow", delay=1.0).start(), await Backend("other").start()
        policy = _policy(retry_on=["5xx", "timeout", "reset"])
        cfg = config([service("svc", [slow.endpoint, other.endpoint], policy=policy)])
        async with mesh_front(cfg, clock=lagging, codec=codec) as front:
            resp = await front.request("/d", headers=["x-mesh-timeout-ms: 300"])
        await slow.close()
        await other.close()
        assert resp.status == 504 and b"DL" in resp.body, resp.body
        assert front.records[0].flag is Flag.DEADLINE_EXCEEDED
        assert not other.seen  # 3 ms left is no time for another attempt

    run(main())


def test_remaining_budget_sent_upstream_shrinks_across_attempts(codec: str) -> None:
    async def main() -> None:
        bad = await Backend("bad", status=503, delay=0.2).start()
        good = await Backend("good").start()
        cfg = config([service("svc", [bad.endpoint, good.endpoint], policy=_policy())])
        async with mesh_front(cfg, codec=codec) as front:
            resp = await front.request("/d", headers=["grpc-timeout: 2S"])
        await bad.close()
        await good.close()
        assert resp.status == 200
        first = int(bad.seen[0].headers["x-mesh-timeout-ms"])
        second = int(good.seen[0].headers["x-mesh-timeout-ms"])
        assert 1900 <= first <= 2000
        assert second <= first - 200

    run(main())


def test_per_try_timeout_moves_on_and_without_retries_answers_504_ut(codec: str) -> None:
    async def main() -> None:
        slow, fast = await Backend("slow", delay=1.0).start(), await Backend("fast").start()
        endpoints = [slow.endpoint, fast.endpoint]
        retrying = _policy(per_try_timeout="200ms", retry_on=["timeout"])
        single = _policy(per_try_timeout="200ms", retry_on=["timeout"]) | {
            "retries": {"attempts": 0, "per_try_timeout": "200ms"}
        }
        async with mesh_front(
            config([service("svc", endpoints, policy=retrying)]), codec=codec
        ) as front:
            started = time.monotonic()
            resp = await front.request("/t")
            took = time.monotonic() - started
        async with mesh_front(
            config([service("svc", endpoints, policy=single)]), codec=codec
        ) as lone:
            timed_out = await lone.request("/t")
        await slow.close()
        await fast.close()
        assert (resp.status, resp.body) == (200, b"fast")
        assert took < 0.8
        assert front.records[0].attempts == 2
        assert timed_out.status == 504 and b"UT" in timed_out.body
        assert lone.records[0].flag is Flag.UPSTREAM_TIMEOUT

    run(main())


def test_pool_overflow_is_503_uo(codec: str) -> None:
    async def main() -> None:
        slow = await Backend("slow", delay=0.4).start()
        breaker = {"max_connections": 1, "max_pending_requests": 1}
        policy = {"circuit_breaker": breaker, "retries": {"attempts": 0}}
        cfg = config([service("svc", [slow.endpoint], policy=policy)])
        async with mesh_front(cfg, codec=codec) as front:
            first = asyncio.create_task(front.request("/1"))
            await asyncio.sleep(0.1)
            queued = asyncio.create_task(front.request("/2"))  # waits for the connection
            await asyncio.sleep(0.1)
            third = await front.request("/3")
            statuses = [(await first).status, (await queued).status]
            overflows = front.cluster("svc")["overflows"]
        await slow.close()
        assert statuses == [200, 200]
        assert third.status == 503 and b"UO" in third.body
        assert [s.path for s in slow.seen] == ["/1", "/2"]
        assert slow.connections == 1
        assert overflows["max_pending_requests"] == 1
        flags = sorted(r.flag.value for r in front.records)
        assert flags == sorted(["-", "-", Flag.UPSTREAM_OVERFLOW.value])

    run(main())


def test_max_requests_breaker_is_503_uo(codec: str) -> None:
    async def main() -> None:
        slow = await Backend("slow", delay=0.4).start()
        policy = {"circuit_breaker": {"max_requests": 1}}
        cfg = config([service("svc", [slow.endpoint], policy=policy)])
        async with mesh_front(cfg, codec=codec) as front:
            first = asyncio.create_task(front.request("/1"))
            await asyncio.sleep(0.1)
            second = await front.request("/2")
            first_resp = await first
            overflows = front.cluster("svc")["overflows"]
        await slow.close()
        assert (first_resp.status, second.status) == (200, 503)
        assert overflows["max_requests"] == 1
        assert [s.path for s in slow.seen] == ["/1"]

    run(main())


def test_a_full_retry_breaker_hands_the_upstream_response_to_the_client(codec: str) -> None:
    async def main() -> None:
        bad, good = await Backend("bad", status=503).start(), await Backend("good").start()
        dead = {"address": "127.0.0.1", "port": refused_port()}
        policy = _policy() | {"circuit_breaker": {"max_retries": 0}}
        cfg = config([service("svc", [bad.endpoint, good.endpoint, dead], policy=policy)])
        async with mesh_front(cfg, codec=codec) as front:
            answered = await front.request("/s")  # round robin: bad first, 503
            refused = await front.request("/r")  # then good, then the dead one
            refused = await front.request("/r")
            overflows = front.cluster("svc")["overflows"]
        await bad.close()
        await good.close()
        assert (answered.status, answered.body) == (503, b"bad")  # not a 502 of ours
        assert refused.status == 503 and b"UF" in refused.body
        assert [r.attempts for r in front.records] == [1, 1, 1]
        assert overflows["max_retries"] == 2
        assert len(good.seen) == 1

    run(main())


def test_a_503_to_a_body_too_large_to_replay_goes_to_the_client(codec: str) -> None:
    async def main() -> None:
        bad, good = await Backend("bad", status=503).start(), await Backend("good").start()
        cfg = config([service("svc", [bad.endpoint, good.endpoint], policy=_policy())])
        async with mesh_front(cfg, codec=codec) as front:  # round robin: bad first
            resp = await front.request("/big", method="PUT", body=b"x" * (70 * 1024))
        await bad.close()
        await good.close()
        # Over the 64 KiB kept for a replay: the 503 cannot be retried, so it stands.
        assert (resp.status, resp.body) == (503, b"bad")
        assert [r.attempts for r in front.records] == [1]
        assert good.seen == []

    run(main())
