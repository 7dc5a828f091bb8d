"""What one proxy process holds right now, for the admin ``GET /stats`` page.

Leaks show up as counts that do not come back down: open file descriptors, asyncio
tasks, client connections being served and upstream connections in the clusters'
pools. Each is read when the page is asked for (no bookkeeping on the request path),
so a test can take a baseline, make trouble, and wait for the numbers to return.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping
from typing import Any

FD_DIR = "/proc/self/fd"


def open_fds() -> int:
    """File descriptors open in this process (the directory's own one not counted)."""
    try:
        return len(os.listdir(FD_DIR)) - 1
    except OSError:
        return -1  # no /proc: say so rather than guess


def process_stats(
    connections: Callable[[], int],
    pools: Callable[[], Mapping[str, Mapping[str, int]]],
    collector: Callable[[], Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """``connections``: client connections in service; ``pools``: per cluster, its
    upstream connections ``open`` (idle included) and ``idle``; ``collector``: the
    cyclic collector's view (``proxy.reload.gcfreeze.stats``)."""
    per_cluster = {name: dict(counts) for name, counts in pools().items()}
    return {
        "pid": os.getpid(),
        "open_fds": open_fds(),
        "tasks": len(asyncio.all_tasks()),
        "downstream_connections": connections(),
        "upstream_connections": {
            "open": sum(c.get("open", 0) for c in per_cluster.values()),
            "idle": sum(c.get("idle", 0) for c in per_cluster.values()),
            "clusters": per_cluster,
        },
        **({} if collector is None else {"gc": dict(collector())}),
    }
