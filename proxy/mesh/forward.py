"""``MeshForwarder``: carries out what the retry loop (``proxy.policy.retrying``) decides.

The decisions are the ``RetryLoop``'s; this shell does the I/O they name: pick an
endpoint outside ``Send.exclude`` through the service's policy, send the attempt
with ``x-mesh-attempt`` and the remaining deadline in ``x-mesh-timeout-ms``, classify
how it ended into an ``Outcome`` for the cluster and the loop, sleep the backoff,
and raise the error the loop stops with.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Awaitable, Callable
from typing import Final

from proxy.core.names import MESH_ATTEMPT, MESH_TIMEOUT_MS
from proxy.http.codec import CodecFactory, H11Codec
from proxy.http.errors import (
    DownstreamError,
    UpstreamConnectError,
    UpstreamError,
    UpstreamOverflowError,
    UpstreamResetError,
    UpstreamTimeoutError,
)
from proxy.http.exchange import Exchange
from proxy.http.model import Limits, RequestHead, RequestRecord, Target
from proxy.http.passthrough import attempt_once
from proxy.http.pool import UpstreamPool
from proxy.l4.conn import Intercepted
from proxy.l4.dial import passthrough_opener
from proxy.mesh.cluster import Cluster, EndpointKey
from proxy.mesh.dispatch import MeshDispatcher, RequestState
from proxy.mesh.errors import DeadlineExceededError, NoHealthyUpstreamError, RetriedStatus
from proxy.policy import Choice, Outcome, OutcomeKind
from proxy.policy.outcome import RESPONSES
from proxy.policy.overload import Overload
from proxy.policy.retrying import Answer, RetryLoop, Stop

ATTEMPT_HEADER: Final = MESH_ATTEMPT
TIMEOUT_HEADER: Final = MESH_TIMEOUT_MS
_ATTEMPT_VALUES: Final = tuple(str(n).encode() for n in range(1, 11))
_HOLD_NOTHING: Final[frozenset[int]] = frozenset()
_RESET: Final = Outcome(OutcomeKind.RESET)
_TIMEOUT: Final = Outcome(OutcomeKind.TIMEOUT)
_REFUSED: Final = Outcome(OutcomeKind.REFUSED)
_CONNECT_FAILURE: Final = Outcome(OutcomeKind.CONNECT_FAILURE)


def classify(exc: UpstreamError) -> Outcome | None:
    """The endpoint's outcome for a failed attempt; None when it is not the endpoint's."""
    if isinstance(exc, RetriedStatus):
        return Outcome.response(exc.status_code)
    if isinstance(exc, UpstreamOverflowError):
        return None  # our own pool was full: says nothing about the endpoint
    if isinstance(exc, UpstreamConnectError):
        return _REFUSED if exc.reason == "refused" else _CONNECT_FAILURE
    if isinstance(exc, UpstreamTimeoutError):
        return _TIMEOUT
    if isinstance(exc, UpstreamResetError):
        return _RESET
    return _RESET


def _stopped(stop: Stop, service: str) -> UpstreamError:
    """The error that tells the client why the loop stopped (not for ``FAILURE``)."""
    answer = stop.answer
    if answer is Answer.DEADLINE:
        return DeadlineExceededError("request deadline exceeded")
    if answer is Answer.NO_ENDPOINT:
        return NoHealthyUpstreamError(f"{service}: no healthy endpoint")
    return UpstreamOverflowError(f"{service}: max_requests reached")


class MeshForwarder:
    """The mesh's ``Forwarder``: ``MeshDispatcher`` routes, the retry loop attempts.

    The engine is handed this object (it never subclasses the engine). ``start`` routes
    a request into its ``RequestState``; the engine then calls the state's ``run``,
    which comes back here to carry out the attempts, and ``done`` once at the end.
    """

    def __init__(
        self,
        dispatcher: MeshDispatcher,
        limits: Limits | None = None,
        *,
        pool: UpstreamPool | None = None,
        inbound_pool: UpstreamPool | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        codec: CodecFactory = H11Codec,
        overload: Overload | None = None,
    ) -> None:
        limits = limits or Limits()
        self.dispatcher = dispatcher
        # ``codec`` speaks to upstreams on the pools made here; the clusters' pools get
        # theirs (and the overload guard) from the ``Mesh``.
        self.pool = pool or UpstreamPool(codec=codec, overload=overload)  # passthrough
        # The local app, connected to from 127.0.0.6 / ::6 (the interceptor lets it by).
        self.inbound_pool = inbound_pool or UpstreamPool(
            opener=passthrough_opener(limits.connect_timeout), codec=codec, overload=overload
        )
        self.clock = dispatcher.clock
        self.rng: random.Random = dispatcher.rng
        self._sleep = sleep

    def start(self, conn: Intercepted, head: RequestHead) -> RequestState:
        state = self.dispatcher.route(conn, head)
        state.forwarder = self
        return state

    def refused(self, record: RequestRecord) -> None:
        self.dispatcher.refused(record)

    async def close(self) -> None:
        """Close the idle connections of the pools this forwarder owns."""
        await self.pool.close()
        await self.inbound_pool.close()

    async def run(self, state: RequestState, exchange: Exchange) -> None:
        """Carry out one request's attempts (``RequestState.run``)."""
        if state.delay:  # a step holds the request (fault injection)
            await self._sleep(state.delay)
            if state.later is not None:
                state.reply = state.later  # the engine answers it, no attempt made
                return
            if state.cluster is not None:  # the membership may have changed meanwhile
                state.outside = state.cluster.outside(state.subset)
        if state.cluster is None:
            await self._direct(exchange, state)
            return
        cluster = state.cluster
        plan = state.plan
        assert plan is not None
        policy = cluster.policy
        clock, rng = self.clock, self.rng
        pool = cluster.pool  # the cluster's pool: its breaker limits bound it
        loop: RetryLoop[EndpointKey] = RetryLoop(
            plan.retry,
            policy,
            state.deadline,
            state.method,
            state.outside,
            rng,
            plan.status_retry,
        )
        # The loop and each attempt are inline here: every coroutine level costs each
        # request a frame on the way in and on every resume.
        try:
            now = clock()
            step = loop.begin(now)
            while True:
                if isinstance(step, Stop):
                    raise _stopped(step, state.service)
                choice = policy.choose(rng, now, step.exclude)
                if choice is None:
                    step = loop.unpicked(step)
                    continue
                endpoint = choice.endpoint
                state.version = cluster.versions.get(endpoint, state.version)
                # ``x-mesh-attempt``, the remaining deadline, then telemetry's headers
                # (inline: once per attempt).
                number = step.number
                headers: tuple[tuple[bytes, bytes], ...] = (
                    (ATTEMPT_HEADER, _ATTEMPT_VALUES[number - 1])
                    if number <= 10
                    else (ATTEMPT_HEADER, str(number).encode()),
                )
                at = state.deadline.at
                if at is not None and now < at:  # ``Deadline.header_value``, inline
                    budget = str(max(1, math.floor((at - now) * 1000.0))).encode()
                    headers += ((TIMEOUT_HEADER, budget),)
                target = Target(
                    endpoint,
                    pool,
                    step.timeout,
                    headers + state.watch.headers,
                    plan.hold if step.ask else _HOLD_NOTHING,
                )
                # Each attempt is reported to the cluster exactly once, however it ends.
                try:
                    try:
                        held = await exchange.attempt(target)
                    except UpstreamError as exc:
                        if not (exc.stale and exchange.can_retry):
                            raise
                        # The keep-alive race, as in ``attempt_once`` (inline: one
                        # coroutine level less): the same endpoint, a fresh connection.
                        held = await exchange.attempt(target, fresh=True)
                    if held:
                        # A status the loop may retry, held back from the client: the
                        # loop decides now, with the body's replayability and the time.
                        if loop.head(held, exchange.can_retry, clock()):
                            exchange.drop_held()
                            raise RetriedStatus(held)
                        await exchange.relay_held()
                except UpstreamError as exc:
                    outcome = classify(exc)
                    now = clock()
                    self._report(exchange, cluster, choice, outcome, now)
                    if outcome is None and isinstance(exc, UpstreamOverflowError):
                        cluster.pending_overflows += 1
                    after = loop.failed(endpoint, outcome, exchange.can_retry, now)
                    if isinstance(after, Stop):
                        if after.answer is Answer.FAILURE:
                            raise
                        raise _stopped(after, state.service) from exc
                except DownstreamError:
                    self._report(exchange, cluster, choice, None, clock())  # the client's doing
                    raise
                except BaseException:
                    # e.g. the response broke off after its head went out
                    outcome = _RESET if exchange.committed else None
                    self._report(exchange, cluster, choice, outcome, clock())
                    raise
                else:
                    status = exchange.status
                    if 100 <= status <= 599:
                        latency = exchange.upstream_latency  # time to the response head
                        outcome = RESPONSES.get(status) or Outcome.response(status)
                        cluster.report_attempt(choice, outcome, clock(), latency)
                    else:
                        cluster.report_attempt(choice, _RESET, clock(), None)
                    return
                if after.seconds > 0:
                    await self._sleep(after.seconds)
                now = clock()
                step = loop.next(now)
        finally:
            loop.end()

    async def _direct(self, exchange: Exchange, state: RequestState) -> None:
        """One attempt to where the client was going (plus the keep-alive race retry)."""
        pool = self.inbound_pool if state.inbound else self.pool
        now = self.clock()
        deadline = state.deadline
        timeout = deadline.attempt_timeout(now) or 0.0
        headers: tuple[tuple[bytes, bytes], ...] = ()
        budget = deadline.header_value(now)
        if budget is not None:
            headers = ((TIMEOUT_HEADER, budget.encode()),)
        headers += state.watch.headers
        try:
            await attempt_once(exchange, Target(state.endpoint, pool, timeout, headers))
        except UpstreamTimeoutError as exc:
            if deadline.spent_by_timeout(self.clock()):
                raise DeadlineExceededError("request deadline exceeded") from exc
            raise

    def _report(
        self,
        exchange: Exchange,
        cluster: Cluster,
        choice: Choice[EndpointKey],
        outcome: Outcome | None,
        now: float,
    ) -> None:
        if outcome is None:
            cluster.policy.end(choice, now)
        else:
            # Time to the response head when there was one; else the time spent.
            latency = exchange.upstream_latency if outcome.status is not None else None
            cluster.report_attempt(choice, outcome, now, latency)
