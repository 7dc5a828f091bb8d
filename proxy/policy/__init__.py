"""The resilience policy core: pure decisions, no I/O, no clock, no randomness of its own.

Callers pass ``now`` (monotonic seconds) and a ``random.Random``. One request through a
``ServicePolicy``: ``Deadline.start`` and ``budget.deposit`` once; then per attempt
``breakers.try_acquire`` -> ``choose`` -> (I/O, ``deadline.attempt_timeout``) ->
``report`` -> ``decide`` (RETRY: sleep ``backoff``, choose again excluding tried ones).
"""

from __future__ import annotations

from proxy.policy.balancer import BALANCERS, DEFAULT_BALANCER, make_balancer
from proxy.policy.breaker import BreakerLimits, CircuitBreakers, Resource
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
from proxy.policy.upstream import Choice, EndpointReport, ServiceParams, ServicePolicy

__all__ = [
    "BALANCERS",
    "DEFAULT_BALANCER",
    "GRPC_TIMEOUT_HEADER",
    "MESH_TIMEOUT_HEADER",
    "AccountingError",
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
    "PolicyError",
    "Resource",
    "RetryBudget",
    "RetryDecision",
    "RetryOn",
    "RetryParams",
    "Routing",
    "SequenceError",
    "ServiceParams",
    "ServicePolicy",
    "Verdict",
    "backoff",
    "decide",
    "make_balancer",
    "parse_grpc_timeout",
    "parse_mesh_timeout",
    "parse_retry_on",
]
