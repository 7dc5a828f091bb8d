"""The sidecar's ``GET /stats`` (admin port, inside the pod), and waiting for what it
holds to come back to a baseline: a leak is a count that stays above it."""

from __future__ import annotations

import json
import time
from typing import Any

from tests.support import nsock

ADMIN = ("127.0.0.1", 15000)


def stats(ns: str) -> dict[str, Any]:
    status, body = nsock.http_get(ns, *ADMIN, "/stats")
    assert status == 200, body
    data = json.loads(body)
    assert isinstance(data, dict)
    return data


def held(data: dict[str, Any]) -> dict[str, int]:
    """What must come back to its baseline once trouble is over. Idle pooled
    connections may legitimately be used up (and closed) by the trouble, so they are
    counted apart: fds beside the pool's, and pool connections busy (open, not idle)."""
    pools = data["upstream_connections"]
    return {
        "fds_beside_pool": int(data["open_fds"]) - int(pools["open"]),
        "tasks": int(data["tasks"]),
        "downstream_connections": int(data["downstream_connections"]),
        "upstream_busy": int(pools["open"]) - int(pools["idle"]),
    }


def wait_for_baseline(ns: str, baseline: dict[str, int], timeout: float = 5.0) -> dict[str, int]:
    """The held counts once they equal ``baseline``, or as last seen after ``timeout``."""
    deadline = time.monotonic() + timeout
    while (now := held(stats(ns))) != baseline and time.monotonic() < deadline:
        time.sleep(0.05)
    return now
