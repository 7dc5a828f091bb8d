"""The upstream-fault scenarios as services: one per way an upstream can misbehave.

Endpoints live on 10.77.3.x in the service namespace and answer by path (the test
server's ``paths`` reply: ``/slow`` never answers in time, ``/stall`` stops mid-body,
``/cut?rst=1`` resets mid-body, ``X-Drop-If-Reused`` drops a reused connection); VIPs
are 10.96.0.7x. Each service has its own cluster, so one scenario's state stays its own.
"""

from __future__ import annotations

from typing import Any

from tests.support.l7_scenarios import NO_EJECTION, PORT, service

DEADLINE_S = 0.8  # the route timeout of the silent, stalling and cutting services
LOSSY_DEADLINE_S = 2.0
ROOMY = {"retries": {"attempts": 2, "budget": {"ratio": 1, "min_per_second": 100}},
         "circuit_breaker": {"max_retries": 100}, **NO_EJECTION}  # fmt: skip


def ep(n: int) -> str:
    return f"10.77.3.{n}"


def vip(n: int) -> str:
    return f"10.96.0.{n}"


SILENT, STALLING, CUTTING, STALE, LOSSY, STUCK = 70, 71, 72, 73, 74, 75

CONFIG: dict[str, Any] = {
    "mesh": {"outbound_policy": "registry_only"},
    "services": [
        # Retries on the defaults (connect-failure, refused, reset, 503): not on a timeout.
        service("silent", SILENT, [ep(1), ep(2)], policy={"timeout": "800ms", **ROOMY}),
        service("stalling", STALLING, [ep(11)], policy={"timeout": "800ms", **ROOMY}),
        service("cutting", CUTTING, [ep(21), ep(22)], policy={"timeout": "800ms", **ROOMY}),
        service("stale", STALE, [ep(31)], policy=ROOMY),
        service("lossy", LOSSY, [ep(41), ep(42)], policy={"timeout": "2s", **ROOMY}),
        # A long deadline: whatever ends a request here early, it is not the timeout.
        service("stuck", STUCK, [ep(51)], policy={"timeout": "30s", **ROOMY}),
    ],
}

ENDPOINTS = [
    ("silent-a", ep(1), PORT),
    ("silent-b", ep(2), PORT),
    ("stalling", ep(11), PORT),
    ("cutting-a", ep(21), PORT),
    ("cutting-b", ep(22), PORT),
    ("stale", ep(31), PORT),
    ("lossy-a", ep(41), PORT),
    ("lossy-b", ep(42), PORT),
    ("stuck", ep(51), PORT),
]
LOSSY_ADDRESSES = (ep(41), ep(42))

# -- an endpoint killed under load (its own pod: ejection state is the point) -----------
KILLABLE = 76
KILL_EJECTION_S = 1.0  # base_ejection_time; a failed probe doubles it (capped at 2 s)
KILL_CONFIG: dict[str, Any] = {
    "mesh": {"outbound_policy": "registry_only"},
    "services": [
        service(
            "killable", KILLABLE, [ep(61), ep(62), ep(63)],
            policy={
                "load_balancer": "round_robin",  # the victim keeps its turn until ejected
                "retries": {"attempts": 3, "budget": {"ratio": 1, "min_per_second": 100}},
                "circuit_breaker": {"max_retries": 100},
                "outlier_detection": {
                    "consecutive_errors": 3, "interval": "1s", "base_ejection_time": "1s",
                    "max_ejection_time": "2s", "max_ejection_percent": 50,
                },
            },
        ),
    ],
}  # fmt: skip
KILL_ENDPOINTS = [("steady-a", ep(61), PORT), ("steady-b", ep(62), PORT)]
VICTIM = ep(63)  # served by a child process (``python -m tests.support.http_server``)
