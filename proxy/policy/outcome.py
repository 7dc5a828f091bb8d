"""What one upstream attempt ended with: the single vocabulary of the policy core.

The HTTP layer classifies each attempt once into an ``Outcome``; the balancer, the
retry decision and outlier detection all read the same value, so they can never
disagree about what a "failure" was.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Final

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
    # Read on every attempt by the balancer, the retry decision and outlier detection:
    # plain attributes set once per (cached) outcome, where a property is a call a read.
    # ``is_error``: counts against the endpoint (outlier detection, balancer penalty).
    is_error: bool = field(init=False, repr=False, compare=False)
    # ``never_reached_app``: the request certainly did not reach the application, so
    # any method is safe to replay.
    never_reached_app: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        kind = self.kind
        object.__setattr__(self, "is_error", kind is not OutcomeKind.SUCCESS)
        object.__setattr__(
            self,
            "never_reached_app",
            kind is OutcomeKind.CONNECT_FAILURE or kind is OutcomeKind.REFUSED,
        )

    @classmethod
    def response(cls, status: int) -> Outcome:
        """Classify a received response by its status code."""
        # Outcomes are immutable and statuses few: one per status, not one per request.
        outcome = RESPONSES.get(status) if cls is Outcome else None
        if outcome is not None:
            return outcome
        if not 100 <= status <= 599:
            raise InvalidParameter(f"HTTP status out of range: {status!r}")
        kind = OutcomeKind.HTTP_5XX if status >= 500 else OutcomeKind.SUCCESS
        outcome = cls(kind, status)
        if cls is Outcome and type(status) is int:
            RESPONSES[status] = outcome
        return outcome


# ``response``'s outcomes by status, at most 500 (100..599); read-only elsewhere (a
# caller on the hot path may look a status up here before calling ``response``).
RESPONSES: Final[dict[int, Outcome]] = {}
SUCCESS: Final = Outcome(OutcomeKind.SUCCESS, 200)
CONNECT_FAILURE: Final = Outcome(OutcomeKind.CONNECT_FAILURE)
REFUSED: Final = Outcome(OutcomeKind.REFUSED)
RESET: Final = Outcome(OutcomeKind.RESET)
TIMEOUT: Final = Outcome(OutcomeKind.TIMEOUT)
