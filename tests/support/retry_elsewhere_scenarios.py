"""The retry-elsewhere and ejection scenarios as services, each with its own numbers.

Endpoints live on 10.77.2.x in the service namespace, VIPs are 10.96.0.5x; every
service has its own cluster, so the ejections, budgets and EWMA state of one
scenario never reach another. Policies not named by a scenario are the defaults
(peak-EWMA, 2 retries on connect-failure / reset / refused / 503, ejection after 5).
"""

from __future__ import annotations

from typing import Any

from tests.support.http_server import Mode
from tests.support.l7_scenarios import NO_EJECTION, NO_RETRY_LIMITS, PORT, service

ROOMY_BUDGET = {"ratio": 1, "min_per_second": 100}
CONSECUTIVE = 3  # the flaky scenario's ejection threshold
EJECTION_S = 1.0  # the flaky scenario's base_ejection_time
PROBE_DELAY_MS = 600  # the readmitted endpoint answers this slowly: its probe stays visible
# Under the engine's watch_client_after (1 s). Past it, a keep-alive connection's next
# read used to race the cancelled client watch (a RuntimeError in the downstream
# reader); that bug is fixed, and test_keep_alive_connection_survives_a_response_slower_
# than_the_client_watch keeps it fixed, so this value now only keeps the scenario short.
BREAKER_DELAY_MS = 800
MAX_REQUESTS = 10
REPLAY_LIMIT = 64 * 1024


def ep(n: int) -> str:
    return f"10.77.2.{n}"


def address(n: int) -> str:
    """The endpoint as /clusters names it."""
    return f"{ep(n)}:{PORT}"


CONFIG: dict[str, Any] = {
    "mesh": {"outbound_policy": "registry_only"},
    "services": [
        # Default policy (peak-EWMA, ejection after 5 consecutive errors); only the retry
        # breaker is widened so concurrent retries never overflow it (that is a scenario
        # of its own).
        service("refuse", 50, [ep(1), ep(2), ep(3)], policy={**NO_RETRY_LIMITS}),
        service(
            "flaky", 51, [ep(11), ep(12), ep(13)],
            policy={
                "load_balancer": "round_robin",  # the flaky endpoint keeps getting its turn
                "retries": {"attempts": 0},  # one attempt per request: statuses are the endpoints'
                "outlier_detection": {
                    "consecutive_errors": CONSECUTIVE, "interval": "1s",
                    "base_ejection_time": "1s", "max_ejection_time": "5s",
                    "max_ejection_percent": 50,
                },
            },
        ),
        service(
            "deadline", 52, [ep(21), ep(22)],
            policy={
                # Retries that would happen without the deadline (a per-try timeout is 5xx).
                "retries": {"attempts": 2, "retry_on": ["5xx", "reset", "connect-failure"],
                            "budget": ROOMY_BUDGET},
                **NO_RETRY_LIMITS, **NO_EJECTION,
            },
        ),
        service(
            "breaker", 53, [ep(31)],
            policy={"retries": {"attempts": 0},
                    "circuit_breaker": {"max_requests": MAX_REQUESTS}},
        ),
        service(
            "retrying", 54, [ep(41), ep(42), ep(43)],
            policy={
                "retries": {"attempts": 2, "retry_on": ["503"], "budget": ROOMY_BUDGET},
                **NO_RETRY_LIMITS, **NO_EJECTION,
            },
        ),
        service(
            "capped", 55, [ep(51), ep(52), ep(53)],
            policy={
                "load_balancer": "round_robin", "retries": {"attempts": 0},
                "outlier_detection": {"consecutive_errors": 2, "base_ejection_time": "30s",
                                      "max_ejection_percent": 10},
            },
        ),
        service(
            "panicking", 56, [ep(61), ep(62), ep(63)],
            policy={
                "load_balancer": "round_robin", "retries": {"attempts": 0},
                "outlier_detection": {"consecutive_errors": 2, "base_ejection_time": "30s",
                                      "max_ejection_percent": 100},
            },
        ),
        service(
            "replaying", 57, [ep(71), ep(72)],
            policy={
                "load_balancer": "round_robin",
                "retries": {"attempts": 1, "retry_on": ["reset"], "budget": ROOMY_BUDGET},
                **NO_RETRY_LIMITS, **NO_EJECTION,
            },
        ),
    ],
}  # fmt: skip

ENDPOINTS = [
    ("refuse-a", ep(1), PORT),
    ("refuse-b", ep(2), PORT),
    ("flaky-a", ep(11), PORT),
    ("flaky-b", ep(12), PORT),
    ("flaky-bad", ep(13), PORT),
    ("deadline-a", ep(21), PORT),
    ("deadline-b", ep(22), PORT),
    ("breaker", ep(31), PORT),
    ("retry-a", ep(41), PORT),
    ("retry-b", ep(42), PORT),
    ("retry-c", ep(43), PORT),
    ("cap-bad-a", ep(51), PORT),
    ("cap-bad-b", ep(52), PORT),
    ("cap-ok", ep(53), PORT),
    ("panic-a", ep(61), PORT),
    ("panic-b", ep(62), PORT),
    ("panic-c", ep(63), PORT),
    ("replay-reset", ep(71), PORT),
    ("replay-ok", ep(72), PORT),
]
REFUSING = [ep(3)]  # nothing listens: the kernel answers the SYN with RST
MODES = {
    "flaky-bad": Mode(status=503, ratio=0.5),
    "deadline-a": Mode(delay_ms=200),
    "deadline-b": Mode(delay_ms=200),
    "breaker": Mode(delay_ms=BREAKER_DELAY_MS),
    "retry-a": Mode(status=503),
    "retry-b": Mode(status=503),
    "retry-c": Mode(status=503),
    "cap-bad-a": Mode(status=503),
    "cap-bad-b": Mode(status=503),
    "panic-a": Mode(status=503),
    "panic-b": Mode(status=503),
    "replay-reset": Mode(action="reset"),
}
