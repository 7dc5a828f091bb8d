"""What one upstream attempt ended with: the single vocabulary of the policy core.

The HTTP layer classifies each attempt once into an ``Outcome``; the balancer, the
retry decision and outlier detection all read the same value, so they can never
disagree about what a "failure" was.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from proxy.policy.errors import InvalidParameter


class OutcomeKind(Enum):
    SUCCESS = "success"  # a response below 500 arrived
    HTTP_5XX = "5xx"  # a response of 500..599 arrived
    CONNECT_FAILURE = "connect-failure"  # connect timed out or the network was unreachable
    REFUSED = "refused"  # the endpoint actively refused the connection (RST to our SYN)
    RESET = "reset"  # the connection broke after the request was (partly) sent
    TIMEOUT = "timeout"  # no response within the per-try timeout


@dataclass(frozen=True)
class Outcome:
    kind: OutcomeKind
    status: int | None = None  # the HTTP status when a response arrived

    @classmethod
    def response(cls, status: int) -> Outcome:
        """Classify a received response by its status code."""
        # Outcomes are immutable and statuses few: one per status, not one per request.
        outcome = _BY_STATUS.get(status) if cls is Outcome else None
        if outcome is not None:
            return outcome
        if not 100 <= status <= 599:
            raise InvalidParameter(f"HTTP status out of range: {status!r}")
        kind = OutcomeKind.HTTP_5XX if status >= 500 else OutcomeKind.SUCCESS
        outcome = cls(kind, status)
        if cls is Outcome and type(status) is int:
            _BY_STATUS[status] = outcome
        return outcome

    @property
    def is_error(self) -> bool:
        """Counts against the endpoint (outlier detection, balancer penalty)."""
        return self.kind is not OutcomeKind.SUCCESS

    @property
    def never_reached_app(self) -> bool:
        """The request certainly did not reach the application: safe to replay any method."""
        return self.kind in (OutcomeKind.CONNECT_FAILURE, OutcomeKind.REFUSED)


_BY_STATUS: dict[int, Outcome] = {}  # at most 500 entries (100..599)
SUCCESS = Outcome(OutcomeKind.SUCCESS, 200)
CONNECT_FAILURE = Outcome(OutcomeKind.CONNECT_FAILURE)
REFUSED = Outcome(OutcomeKind.REFUSED)
RESET = Outcome(OutcomeKind.RESET)
TIMEOUT = Outcome(OutcomeKind.TIMEOUT)
