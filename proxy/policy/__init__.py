"""The resilience policy core: pure decisions, no I/O, no clock, no randomness of its own.

Callers pass ``now`` (monotonic seconds) and a ``random.Random``. One HTTP request
(``Deadline.start`` at arrival) is a ``RetryLoop`` over its service's ``ServicePolicy``:
``begin`` -> ``Send`` -> ``choose`` outside ``Send.exclude`` -> (I/O) -> ``report``, and
on a failure ``failed`` -> ``Wait`` (sleep, ``next``) or ``Stop``; ``end`` at the close.
A TCP connection takes one ``ServicePolicy.pick``.
"""

from __future__ import annotations

from proxy.policy.balancer import BALANCERS, DEFAULT_BALANCER, make_balancer
from proxy.policy.breaker import BreakerLimits, Resource
from proxy.policy.breaker_counts import CircuitBreakers
from proxy.policy.budget import BudgetParams, RetryBudget
from proxy.policy.deadline import (
    GRPC_TIMEOUT_HEADER,
    MESH_TIMEOUT_HEADER,
    Deadline,
    parse_grpc_timeout,
    parse_mesh_timeout,
)
from proxy.policy.endpoints import Attempt, BalancerParams, EndpointStats, EndpointTable
from proxy.policy.errors import AccountingError, InvalidParameter, PolicyError, SequenceError
from proxy.policy.ewma import PeakEwma
from proxy.policy.outcome import Outcome, OutcomeKind
from proxy.policy.outlier import Ejection, Health, OutlierDetector, OutlierParams, Routing
from proxy.policy.retry import (
    RetryDecision,
    RetryOn,
    RetryParams,
    Verdict,
    backoff,
    decide,
    parse_retry_on,
)
from proxy.policy.retrying import Answer, Phase, RetryLoop, Send, Stop, Wait
from proxy.policy.upstream import Choice, EndpointReport, ServiceParams, ServicePolicy

__all__ = [
    "BALANCERS",
    "DEFAULT_BALANCER",
    "GRPC_TIMEOUT_HEADER",
    "MESH_TIMEOUT_HEADER",
    "AccountingError",
    "Answer",
    "Attempt",
    "BalancerParams",
    "BreakerLimits",
    "BudgetParams",
    "Choice",
    "CircuitBreakers",
    "Deadline",
    "Ejection",
    "EndpointReport",
    "EndpointStats",
    "EndpointTable",
    "Health",
    "InvalidParameter",
    "Outcome",
    "OutcomeKind",
    "OutlierDetector",
    "OutlierParams",
    "PeakEwma",
    "Phase",
    "PolicyError",
    "Resource",
    "RetryBudget",
    "RetryDecision",
    "RetryLoop",
    "RetryOn",
    "RetryParams",
    "Routing",
    "Send",
    "SequenceError",
    "ServiceParams",
    "ServicePolicy",
    "Stop",
    "Verdict",
    "Wait",
    "backoff",
    "decide",
    "make_balancer",
    "parse_grpc_timeout",
    "parse_mesh_timeout",
    "parse_retry_on",
]
