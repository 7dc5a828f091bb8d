"""One request's retry loop as a state machine: outcomes in, the next action out.

The shell (``proxy.mesh.forward``) carries out what this says: pick an endpoint
leaving out ``Send.exclude``, send with ``Send.timeout``, sleep ``Wait.seconds``, and
answer what ``Stop`` names. Each failure's verdict is ``proxy.policy.retry.decide``;
around it this adds the ``max_requests`` and ``max_retries`` breakers, the budget
deposit, the endpoints already tried and the deadline at every step.

Phases and transitions (``now`` and ``rng`` are passed in; nothing here waits):

    READY    --begin, max_requests full-->                 DONE     Stop(OVERFLOW)
    READY    --begin, deadline passed-->                   DONE     Stop(DEADLINE)
    READY    --begin-->                                    SENDING  Send(1)
    SENDING  --unpicked, an endpoint was left out as tried-->
                                                           SENDING  Send(same, subset only)
    SENDING  --unpicked, otherwise-->                      DONE     Stop(NO_ENDPOINT)
    SENDING  --head(status), decide, budget and the max_retries slot all say retry-->
                                                           SENDING  True: discard it
    SENDING  --failed(None): not the endpoint's doing (our pool was full)-->
                                                           DONE     Stop(FAILURE)
    SENDING  --failed(TIMEOUT) whose timer was the deadline's-->
                                                           DONE     Stop(DEADLINE)
    SENDING  --failed, turned down at its head, or decide says retry and a slot is free-->
                                                           BACKOFF  Wait(jittered)
    SENDING  --failed, otherwise-->                        DONE     Stop(FAILURE, verdict)
    BACKOFF  --next, deadline passed-->                    DONE     Stop(DEADLINE)
    BACKOFF  --next-->                                     SENDING  Send(n + 1)
    any      --end-->                                      DONE     (slots handed back)

``Send(n)`` leaves out the endpoints outside the request's subset and those tried;
its timeout is ``Deadline.attempt_timeout`` (0: none). A response that reached the
client is final, so success takes no event but ``end``. The ``max_retries`` slot is
held from the decision to retry until the next decision or ``end``; FAILURE means the
last attempt's own failure is the answer. Other events in a phase raise
``SequenceError``.
"""

from __future__ import annotations

from collections.abc import Hashable, Set
from dataclasses import dataclass
from enum import Enum
from random import Random
from typing import Final, Generic, TypeVar

from proxy.policy.breaker import Resource
from proxy.policy.deadline import Deadline
from proxy.policy.errors import SequenceError
from proxy.policy.outcome import Outcome, OutcomeKind
from proxy.policy.retry import RetryDecision, RetryParams, Verdict, decide
from proxy.policy.upstream import ServicePolicy
from proxy.policy.values import Send as Send

E = TypeVar("E", bound=Hashable)


class Phase(Enum):
    READY = "ready"  # nothing started
    SENDING = "sending"  # an attempt was ordered: pick, send, report how it ended
    BACKOFF = "backoff"  # a retry was decided: wait, then ask for the next attempt
    DONE = "done"


class Answer(Enum):
    """What the client is told when the loop stops (the shell maps it to an error)."""

    FAILURE = "failure"  # the last attempt's failure stands
    DEADLINE = "deadline"  # 504 DL
    NO_ENDPOINT = "no-endpoint"  # 503 UH
    OVERFLOW = "overflow"  # 503 UO: max_requests in flight


@dataclass(frozen=True, slots=True)
class Wait:
    """Retry after ``seconds``, then call ``next``."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Stop:
    answer: Answer
    verdict: Verdict | None = None  # why a failure stands (None: no decision was made)


OVERFLOW: Final = Stop(Answer.OVERFLOW)
DEADLINE: Final = Stop(Answer.DEADLINE)
NO_ENDPOINT: Final = Stop(Answer.NO_ENDPOINT)
NOT_THE_ENDPOINTS: Final = Stop(Answer.FAILURE)
_FAILURE: Final = {v: Stop(Answer.FAILURE, v) for v in Verdict}
# Enum members as Final statics: read once where they are compared.
_READY: Final = Phase.READY
_SENDING: Final = Phase.SENDING
_BACKOFF: Final = Phase.BACKOFF
_DONE: Final = Phase.DONE
_REQUESTS: Final = Resource.REQUESTS
_RETRIES: Final = Resource.RETRIES
_TIMEOUT: Final = OutcomeKind.TIMEOUT


class RetryLoop(Generic[E]):
    """One request's attempts against one service (``ServicePolicy``) and route."""

    __slots__ = (
        "breakers",
        "budget",
        "deadline",
        "heads",
        "holds_request",
        "holds_retry",
        "method",
        "number",
        "outside",
        "params",
        "phase",
        "rng",
        "tried",
        "turned_down",
    )

    def __init__(
        self,
        params: RetryParams,
        policy: ServicePolicy[E],
        deadline: Deadline,
        method: str,
        outside: Set[E],
        rng: Random,
        heads: bool,
    ) -> None:
        """``outside``: the endpoints the request's subset leaves out; ``heads``: a
        response status may be retried (``Send.ask`` on all but the last attempt)."""
        self.params = params
        self.breakers = policy.breakers
        self.budget = policy.budget
        self.deadline = deadline
        self.method = method
        self.outside = outside
        self.rng = rng
        self.heads = heads
        self.phase = _READY
        self.number = 0
        self.tried: set[E] | None = None
        self.turned_down: Wait | None = None  # a response head ``head`` discarded
        self.holds_request = False
        self.holds_retry = False

    def begin(self, now: float) -> Send[E] | Stop:
        if self.phase is not _READY:
            raise SequenceError(f"begin in phase {self.phase.value}")
        if not self.breakers.try_acquire(_REQUESTS):
            self.phase = _DONE
            return OVERFLOW
        self.holds_request = True
        self.budget.deposit(now)
        return self._send(now)

    def unpicked(self, send: Send[E]) -> Send[E] | Stop:
        """Nothing could be picked for ``send``: any endpoint of the subset, tried or
        not, before giving up."""
        if self.phase is not _SENDING:
            raise SequenceError(f"unpicked in phase {self.phase.value}")
        if send.exclude is not self.outside:  # it left tried ones out too
            return Send(send.number, self.outside, send.timeout, send.ask)
        self.phase = _DONE
        return NO_ENDPOINT

    def head(self, status: int, replayable: bool, now: float) -> bool:
        """A response head arrived for an attempt sent with ``ask``: True discards it
        (the attempt then fails with that status) because the retry will happen.
        Below 500 only ``params.status_codes`` can be: a caller may skip the others."""
        if status < 500 and status not in self.params.status_codes:
            return False
        if self.phase is not _SENDING:
            raise SequenceError(f"head in phase {self.phase.value}")
        decision = self._decide(Outcome.response(status), replayable, now)
        if not decision.retry or not self._take_retry_slot():
            return False
        self.turned_down = Wait(decision.backoff)
        return True

    def failed(
        self, endpoint: E, outcome: Outcome | None, replayable: bool, now: float
    ) -> Wait | Stop:
        """The attempt to ``endpoint`` failed before anything reached the client;
        ``outcome`` None: not the endpoint's doing (our own pool was full)."""
        if self.phase is not _SENDING:
            raise SequenceError(f"failed in phase {self.phase.value}")
        turned_down, self.turned_down = self.turned_down, None
        if outcome is None:
            self.phase = _DONE
            return NOT_THE_ENDPOINTS
        if outcome.kind is _TIMEOUT and self.deadline.spent_by_timeout(now):
            self.phase = _DONE  # the attempt's timer was the deadline's: no time is left
            return DEADLINE
        if turned_down is not None and outcome.status is not None:
            wait = turned_down  # decided on its head, the retry slot taken then
        else:
            decision = self._decide(outcome, replayable, now)
            if not decision.retry:
                self.phase = _DONE
                return _FAILURE[decision.verdict]
            if not self._take_retry_slot():
                self.phase = _DONE  # max_retries in flight: this failure is the answer
                return _FAILURE[Verdict.RETRIES_OVERFLOW]
            wait = Wait(decision.backoff)
        if self.tried is None:
            self.tried = set()
        self.tried.add(endpoint)
        self.phase = _BACKOFF
        return wait

    def next(self, now: float) -> Send[E] | Stop:
        """The backoff is over."""
        if self.phase is not _BACKOFF:
            raise SequenceError(f"next in phase {self.phase.value}")
        return self._send(now)

    def end(self) -> None:
        """The request is over, however it ended: hand back the breaker slots."""
        self.phase = _DONE
        if self.holds_retry:
            self.holds_retry = False
            self.breakers.release(_RETRIES)
        if self.holds_request:
            self.holds_request = False
            self.breakers.release(_REQUESTS)

    def _send(self, now: float) -> Send[E] | Stop:
        # ``Deadline.expired`` and ``attempt_timeout`` (or 0.0: none), inline: once per
        # attempt, two calls fewer.
        at = self.deadline.at
        if at is not None and now >= at:
            self.phase = _DONE
            return DEADLINE
        self.phase = _SENDING
        params = self.params
        per_try = params.per_try_timeout
        if at is None:
            timeout = per_try if per_try > 0 else 0.0
        else:
            remaining = at - now  # > 0: not expired
            timeout = min(per_try, remaining) if per_try > 0 else remaining
        number = self.number = self.number + 1
        tried = self.tried
        return Send(
            number,
            self.outside if tried is None else self.outside | tried,
            timeout,
            self.heads and number < params.attempts,
        )

    def _decide(self, outcome: Outcome, replayable: bool, now: float) -> RetryDecision:
        return decide(
            self.params,
            outcome,
            attempt=self.number,
            method=self.method,
            body_replayable=replayable,
            budget=self.budget,
            deadline=self.deadline,
            now=now,
            rng=self.rng,
        )

    def _take_retry_slot(self) -> bool:
        """Hand back the slot of the retry that just ended; take one for the next."""
        if self.holds_retry:
            self.breakers.release(_RETRIES)
        self.holds_retry = self.breakers.try_acquire(_RETRIES)
        return self.holds_retry
