"""Config policy -> policy-core parameters, in this one place.

The config speaks Istio (``retries.attempts`` counts retries after the first try);
the policy core counts attempts in total. Every other field maps one to one.
"""

from __future__ import annotations

from proxy.config.policy import Policy
from proxy.policy import (
    BalancerParams,
    BreakerLimits,
    BudgetParams,
    OutlierParams,
    RetryParams,
    ServiceParams,
    parse_retry_on,
)


def retry_params(policy: Policy) -> RetryParams:
    r = policy.retries
    conditions, codes = parse_retry_on(r.retry_on)
    return RetryParams(
        attempts=r.attempts + 1,
        retry_on=conditions,
        status_codes=codes,
        per_try_timeout=r.per_try_timeout,
        backoff_base=r.backoff.base,
        backoff_max=r.backoff.max,
    )


def service_params(policy: Policy) -> ServiceParams:
    """The per-service state's parameters (balancer, ejection, breakers, budget)."""
    od, cb, budget = policy.outlier_detection, policy.circuit_breaker, policy.retries.budget
    return ServiceParams(
        balancing=BalancerParams(balancer=policy.load_balancer),
        outlier=OutlierParams(
            consecutive_errors=od.consecutive_errors,
            interval=od.interval,
            base_ejection_time=od.base_ejection_time,
            max_ejection_time=od.max_ejection_time,
            max_ejection_percent=float(od.max_ejection_percent),
        ),
        breakers=BreakerLimits(
            max_connections=cb.max_connections,
            max_pending_requests=cb.max_pending_requests,
            max_requests=cb.max_requests,
            max_retries=cb.max_retries,
        ),
        budget=BudgetParams(
            ratio=budget.ratio, min_per_second=float(budget.min_per_second), window=budget.window
        ),
        retry=retry_params(policy),
    )
