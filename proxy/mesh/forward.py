"""``MeshHttpProxy``: the retry loop around ``Exchange.attempt``.

Per attempt: choose an endpoint of the request's subset not tried yet (any of the
subset when all were), send with ``x-mesh-attempt`` and the remaining deadline in
``x-mesh-timeout-ms``, classify how it ended into an ``Outcome``, report it to the
cluster, and let ``proxy.policy.decide`` say whether to go again after a jittered
backoff. A retriable status is decided on the response head, before the client
sees anything; a committed response is final.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

from proxy.http.errors import (
    DownstreamError,
    UpstreamConnectError,
    UpstreamError,
    UpstreamOverflowError,
    UpstreamResetError,
    UpstreamStatusError,
    UpstreamTimeoutError,
)
from proxy.http.exchange import Exchange
from proxy.http.model import Forward, Limits
from proxy.http.pool import UpstreamPool
from proxy.http.server import HttpProxy
from proxy.l4.dial import passthrough_opener
from proxy.mesh.cluster import Cluster, EndpointKey
from proxy.mesh.dispatch import MeshDispatcher, RequestState
from proxy.mesh.errors import DeadlineExceededError, NoHealthyUpstreamError
from proxy.policy import Choice, CircuitBreakers, Outcome, OutcomeKind, Resource, decide
from proxy.policy.retry import RetryDecision

ATTEMPT_HEADER = b"x-mesh-attempt"
TIMEOUT_HEADER = b"x-mesh-timeout-ms"
_ATTEMPT_VALUES = tuple(str(n).encode() for n in range(1, 11))
_RESET = Outcome(OutcomeKind.RESET)
_TIMEOUT = Outcome(OutcomeKind.TIMEOUT)
_REFUSED = Outcome(OutcomeKind.REFUSED)
_CONNECT_FAILURE = Outcome(OutcomeKind.CONNECT_FAILURE)


def classify(exc: UpstreamError) -> Outcome | None:
    """The endpoint's outcome for a failed attempt; None when it is not the endpoint's."""
    if isinstance(exc, UpstreamStatusError):
        return Outcome.response(exc.status_code)
    if isinstance(exc, UpstreamOverflowError):
        return None  # our own pool was full: says nothing about the endpoint
    if isinstance(exc, UpstreamConnectError):
        refused = isinstance(exc.__cause__, ConnectionRefusedError)
        return _REFUSED if refused else _CONNECT_FAILURE
    if isinstance(exc, UpstreamTimeoutError):
        return _TIMEOUT
    if isinstance(exc, UpstreamResetError):
        return _RESET
    return _RESET


class _Retries:
    """One request's retry bookkeeping, made only when a retry may happen.

    It holds the request's unit of the ``max_retries`` breaker while a retry is in
    flight, and is the attempt's ``Forward.retry_status``: it decides on a response
    head before anything is committed, and turns the response down only when the
    retry will really happen (policy, budget and breaker all agree).
    """

    __slots__ = ("attempt", "breakers", "codes", "decision", "held", "proxy", "state")

    def __init__(
        self, proxy: MeshHttpProxy, state: RequestState, breakers: CircuitBreakers
    ) -> None:
        self.proxy, self.state, self.breakers = proxy, state, breakers
        self.codes = state.plan.retry.status_codes if state.plan is not None else frozenset()
        self.attempt = 0
        self.decision: RetryDecision | None = None
        self.held = False

    def take(self) -> bool:
        """Hand back the slot of the attempt that just ended; take one for the next."""
        self.release()
        self.held = self.breakers.try_acquire(Resource.RETRIES)
        return self.held

    def release(self) -> None:
        if self.held:
            self.breakers.release(Resource.RETRIES)
            self.held = False

    def __call__(self, status: int) -> bool:
        if status < 500 and status not in self.codes:
            return False
        decision = self.proxy.decide(self.state, Outcome.response(status), self.attempt, True)
        if not decision.retry or not self.take():
            return False
        self.decision = decision
        return True


class MeshHttpProxy(HttpProxy):
    """``HttpProxy`` whose ``forward`` runs the mesh retry loop."""

    def __init__(
        self,
        dispatcher: MeshDispatcher,
        pool: UpstreamPool,
        limits: Limits | None = None,
        *,
        inbound_pool: UpstreamPool | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        super().__init__(dispatcher, pool, limits)
        self.mesh_dispatcher = dispatcher
        self.inbound_pool = inbound_pool
        self.clock = dispatcher.clock
        self.rng: random.Random = dispatcher.rng
        self._sleep = sleep

    async def close(self) -> None:
        """Close the idle connections of the pools this handler owns."""
        await self.pool.close()
        if self.inbound_pool is not None:
            await self.inbound_pool.close()

    async def forward(self, exchange: Exchange, forward: Forward) -> None:
        state = forward.context
        if type(state) is not RequestState:
            await super().forward(exchange, forward)
            return
        if state.cluster is None:
            await self._direct(exchange, forward, state)
            return
        cluster = state.cluster
        plan = state.plan
        assert plan is not None
        breakers = cluster.policy.breakers
        if not breakers.try_acquire(Resource.REQUESTS):
            raise UpstreamOverflowError(f"{forward.service}: max_requests reached")
        # The retry loop is inline here, and so is each attempt: every coroutine level
        # costs each request a frame on the way in and on every resume.
        retries: _Retries | None = None
        try:
            cluster.policy.budget.deposit(self.clock())
            exchange.pool = cluster.pool  # the cluster's pool: its breaker limits bound it
            deadline = state.deadline
            tried: set[EndpointKey] | None = None
            attempt = 0
            # Asked on every response head only when a status may be retried.
            if plan.status_retry:
                retries = _Retries(self, state, breakers)
            while True:
                attempt += 1
                now = self.clock()
                if deadline.expired(now):
                    raise DeadlineExceededError("request deadline exceeded")
                choice = self._choose(cluster, state, tried, now)
                if choice is None:
                    raise NoHealthyUpstreamError(f"{forward.service}: no healthy endpoint")
                endpoint = choice.endpoint
                state.version = cluster.versions.get(endpoint, state.version)
                check = retries if attempt < plan.retry.attempts else None
                if check is not None:
                    check.attempt, check.decision = attempt, None
                attempt_forward = Forward(
                    endpoint,
                    forward.service,
                    state.version,
                    deadline.attempt_timeout(now, plan.per_try_timeout) or 0.0,
                    self._headers(state, attempt, now),
                    state,
                    check,
                )
                # Each attempt is reported to the cluster exactly once, however it ends.
                try:
                    try:
                        await exchange.attempt(attempt_forward)
                    except UpstreamError as exc:
                        if not (exc.stale and exchange.can_retry):
                            raise
                        # The keep-alive race, as in HttpProxy.forward (inline: one
                        # coroutine level less): the same endpoint, a fresh connection.
                        await exchange.attempt(attempt_forward, fresh=True)
                except UpstreamError as exc:
                    outcome = classify(exc)
                    self._report(exchange, cluster, choice, outcome)
                    if outcome is None:
                        if isinstance(exc, UpstreamOverflowError):
                            cluster.pending_overflows += 1
                        raise
                    if isinstance(exc, UpstreamTimeoutError) and deadline.spent_by_timeout(
                        self.clock()
                    ):
                        # The attempt's timer was the deadline's: no time is left to retry.
                        raise DeadlineExceededError("request deadline exceeded") from exc
                    if isinstance(exc, UpstreamStatusError) and check is not None:
                        decision = check.decision  # its retry slot is taken already
                    else:
                        decision = self.decide(state, outcome, attempt, exchange.can_retry)
                        if decision.retry:
                            if retries is None:
                                retries = _Retries(self, state, breakers)
                            if not retries.take():
                                raise  # max_retries in flight: this failure is the answer
                    if decision is None or not decision.retry:
                        raise
                except DownstreamError:
                    self._report(exchange, cluster, choice, None)  # the client's doing
                    raise
                except BaseException:
                    # e.g. the response broke off after its head went out
                    self._report(exchange, cluster, choice, _RESET if exchange.committed else None)
                    raise
                else:
                    status = exchange.status
                    outcome = Outcome.response(status) if 100 <= status <= 599 else _RESET
                    self._report(exchange, cluster, choice, outcome)
                    return
                if tried is None:
                    tried = set()
                tried.add(endpoint)
                if decision.backoff > 0:
                    await self._sleep(decision.backoff)
        finally:
            if retries is not None:
                retries.release()
            breakers.release(Resource.REQUESTS)

    def _headers(
        self, state: RequestState, attempt: int, now: float
    ) -> tuple[tuple[bytes, bytes], ...]:
        value = _ATTEMPT_VALUES[attempt - 1] if attempt <= 10 else str(attempt).encode()
        headers: tuple[tuple[bytes, bytes], ...] = ((ATTEMPT_HEADER, value),)
        budget = state.deadline.header_value(now)
        if budget is not None:
            headers += ((TIMEOUT_HEADER, budget.encode()),)
        dispatcher = self.mesh_dispatcher
        if dispatcher.observing:
            headers += tuple(dispatcher.observer.upstream_headers(state.token))
        return headers

    async def _direct(self, exchange: Exchange, forward: Forward, state: RequestState) -> None:
        """One attempt to where the client was going (plus the keep-alive race retry)."""
        if state.inbound and self.inbound_pool is not None:
            exchange.pool = self.inbound_pool  # connects from 127.0.0.6 / ::6
        now = self.clock()
        deadline = state.deadline
        timeout = deadline.attempt_timeout(now) or 0.0
        headers: tuple[tuple[bytes, bytes], ...] = ()
        budget = deadline.header_value(now)
        if budget is not None:
            headers = ((TIMEOUT_HEADER, budget.encode()),)
        if self.mesh_dispatcher.observing:
            headers += tuple(self.mesh_dispatcher.observer.upstream_headers(state.token))
        attempt = Forward(
            forward.endpoint, forward.service, forward.version, timeout, headers, state
        )
        try:
            await super().forward(exchange, attempt)
        except UpstreamTimeoutError as exc:
            if deadline.spent_by_timeout(self.clock()):
                raise DeadlineExceededError("request deadline exceeded") from exc
            raise

    def decide(
        self, state: RequestState, outcome: Outcome, attempt: int, replayable: bool
    ) -> RetryDecision:
        cluster = state.cluster
        assert cluster is not None and state.plan is not None
        return decide(
            state.plan.retry,
            outcome,
            attempt=attempt,
            method=state.method,
            body_replayable=replayable,
            budget=cluster.policy.budget,
            deadline=state.deadline,
            now=self.clock(),
            rng=self.rng,
        )

    def _choose(
        self, cluster: Cluster, state: RequestState, tried: set[EndpointKey] | None, now: float
    ) -> Choice[EndpointKey] | None:
        outside = cluster.outside(state.subset)
        if tried:
            choice = cluster.choose(self.rng, now, outside | tried)
            if choice is not None:
                return choice
        return cluster.choose(self.rng, now, outside)

    def _report(
        self,
        exchange: Exchange,
        cluster: Cluster,
        choice: Choice[EndpointKey],
        outcome: Outcome | None,
    ) -> None:
        now = self.clock()
        if outcome is None:
            cluster.policy.pool.finish(choice.attempt, now, None, ok=True)
        else:
            # Time to the response head when there was one; else the time spent.
            latency = exchange.upstream_latency if outcome.status is not None else None
            cluster.report_attempt(choice, outcome, now, latency)


def mesh_http_proxy(dispatcher: MeshDispatcher, limits: Limits | None = None) -> MeshHttpProxy:
    """The HTTP handler the server installs: passthrough pool, inbound pool from 127.0.0.6."""
    limits = limits or Limits()
    inbound = UpstreamPool(opener=passthrough_opener(limits.connect_timeout))
    return MeshHttpProxy(dispatcher, UpstreamPool(), limits, inbound_pool=inbound)
