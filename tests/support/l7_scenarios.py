"""The resilience scenarios: one service per behaviour, its endpoints and their modes.

Each service has its own VIP (10.96.0.N) and endpoints (10.77.1.x on the service
namespace's lo) so one test's policy state (EWMA, ejections, budgets) never leaks
into another's. ``Mode`` says how each endpoint misbehaves; the rest answer at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.support.http_server import Mode
from tests.support.mesh_topology import Mesh, flags_in
from tests.support.pod_clients import Req

PORT = 9080
PLAIN = ("10.77.1.99", 8099)
NO_EJECTION = {"outlier_detection": {"consecutive_errors": 0}}
# Retries with a budget and a retry breaker (Envoy's max_retries, default 3 concurrent)
# that never run out, for tests about *what* gets retried.
NO_RETRY_LIMITS = {"circuit_breaker": {"max_retries": 100}}
RETRY_ALL = {
    "retries": {"attempts": 2, "budget": {"ratio": 1, "min_per_second": 100}},
    **NO_RETRY_LIMITS,
}
DESIGN_METRICS = (  # DESIGN.md §6, proxy-internal
    "mesh_upstream_retries_total",
    "mesh_outlier_ejections_total",
    "mesh_upstream_endpoints",
    "mesh_circuit_breaker_overflows_total",
    "mesh_config_reloads_total",
    "mesh_config_version",
)


def vip(n: int) -> str:
    return f"10.96.0.{n}"


def service(name: str, n: int, addresses: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "port": PORT,
        "addresses": [vip(n)],
        "protocol": "http",
        "endpoints": [{"address": a} for a in addresses],
        **extra,
    }


CONFIG: dict[str, Any] = {
    "mesh": {"outbound_policy": "registry_only"},
    "services": [
        service("ewma", 30, ["10.77.1.21", "10.77.1.22", "10.77.1.23"]),
        service(
            "refusing", 31, ["10.77.1.31", "10.77.1.32"],
            policy={"load_balancer": "round_robin", **RETRY_ALL, **NO_EJECTION},
        ),
        service(
            "resetting", 37, ["10.77.1.33", "10.77.1.34"],
            policy={"load_balancer": "round_robin", **RETRY_ALL, **NO_EJECTION},
        ),
        service(
            "ejecting", 32, ["10.77.1.41", "10.77.1.42", "10.77.1.43"],
            policy={
                "load_balancer": "round_robin",  # the bad endpoint keeps getting its turn
                "retries": {"attempts": 0},
                "outlier_detection": {
                    "consecutive_errors": 3, "interval": "1s", "base_ejection_time": "1s",
                    "max_ejection_time": "5s", "max_ejection_percent": 50,
                },
            },
        ),
        service(
            "deadline", 33, ["10.77.1.51", "10.77.1.52"],
            routes=[{"policy": {"timeout": "200ms"}, "destinations": [{}]}],
        ),
        service(
            "budget", 34, ["10.77.1.61", "10.77.1.62", "10.77.1.63"],
            policy={
                "retries": {
                    "attempts": 3, "retry_on": ["503"],
                    "budget": {"ratio": 0.1, "min_per_second": 1, "window": "2s"},
                },
                **NO_EJECTION,
                **NO_RETRY_LIMITS,  # only the budget bounds retries here
            },
        ),
        service(
            "overflowing", 39, ["10.77.1.65", "10.77.1.66", "10.77.1.67"],
            policy={
                "retries": {"attempts": 2, "retry_on": ["503"],
                            "budget": {"ratio": 1, "min_per_second": 100}},
                "circuit_breaker": {"max_retries": 1},
                **NO_EJECTION,
            },
        ),
        service(
            "breaker", 35, ["10.77.1.71"],
            policy={
                "retries": {"attempts": 0},
                "circuit_breaker": {"max_requests": 2, "max_pending_requests": 1},
            },
        ),
        service(
            "posting", 36, ["10.77.1.81", "10.77.1.82", "10.77.1.83"],
            policy={
                "load_balancer": "round_robin",
                "retries": {"attempts": 2, "retry_on": ["connect-failure", "refused", "503"],
                            "budget": {"ratio": 1, "min_per_second": 100}},
                **NO_RETRY_LIMITS,
                **NO_EJECTION,
            },
        ),
    ],
}  # fmt: skip

ENDPOINTS = [
    ("fast-a", "10.77.1.21", PORT),
    ("fast-b", "10.77.1.22", PORT),
    ("slow", "10.77.1.23", PORT),
    ("refusing-ok", "10.77.1.31", PORT),
    ("resetting-bad", "10.77.1.33", PORT),
    ("resetting-ok", "10.77.1.34", PORT),
    ("eject-a", "10.77.1.41", PORT),
    ("eject-b", "10.77.1.42", PORT),
    ("eject-bad", "10.77.1.43", PORT),
    ("deadline-a", "10.77.1.51", PORT),
    ("deadline-b", "10.77.1.52", PORT),
    ("budget-a", "10.77.1.61", PORT),
    ("budget-b", "10.77.1.62", PORT),
    ("budget-c", "10.77.1.63", PORT),
    ("overflow-a", "10.77.1.65", PORT),
    ("overflow-b", "10.77.1.66", PORT),
    ("overflow-c", "10.77.1.67", PORT),
    ("breaker", "10.77.1.71", PORT),
    ("post-503", "10.77.1.81", PORT),
    ("post-ok", "10.77.1.82", PORT),
    ("plain", *PLAIN),
]
REFUSING = ["10.77.1.32", "10.77.1.83"]  # addresses with nothing listening
MODES = {
    "fast-a": Mode(delay_ms=5),
    "fast-b": Mode(delay_ms=5),
    "slow": Mode(delay_ms=80),
    "resetting-bad": Mode(action="reset"),
    "eject-bad": Mode(status=503),
    "deadline-a": Mode(delay_ms=1000),
    "deadline-b": Mode(delay_ms=1000),
    "budget-a": Mode(status=503),
    "budget-b": Mode(status=503),
    "budget-c": Mode(status=503),
    "overflow-a": Mode(status=503),
    "overflow-b": Mode(status=503),
    "overflow-c": Mode(status=503),
    "breaker": Mode(delay_ms=500),
    "post-503": Mode(status=503),
}


def tagged(prefix: str, method: str = "GET", **headers: str) -> Callable[[int], Req]:
    """A request builder whose i-th request carries ``x-test-id: <prefix>-<i>``."""

    def build(i: int) -> Req:
        extra = tuple((k.replace("_", "-"), v) for k, v in headers.items())
        return Req(method, f"/{prefix}/{i}", (("x-test-id", f"{prefix}-{i}"), *extra))

    return build


def flag_count(m: Mesh, flags: set[str], code: str) -> float:
    """``istio_requests_total`` summed over ``flags`` for one response code."""
    return sum(
        m.metric("istio_requests_total", response_flags=f, response_code=code) for f in flags
    )


def flag_evidence(m: Mesh, before: float, flags: set[str], code: str, path: str) -> str:
    """Where ``flags`` showed up for a ``code`` response: the metrics (delta since
    ``before``) or the access-log line of the request to ``path``; "" if nowhere."""
    if flag_count(m, flags, code) > before:
        return "metrics"
    for entry in m.access_log():
        if path in entry.values() and flags & flags_in(entry):
            return "access log"
    return ""
