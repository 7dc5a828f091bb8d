"""How many CPUs the proxy may run on, and the warning for more workers than that.

Two bounds, as Envoy's ``--concurrency`` and Istio's CPU-limit sizing see them: the
scheduler affinity (``taskset``, cpusets) and the cgroup's CPU quota (a Kubernetes CPU
limit: ``cpu.max`` on cgroup v2, ``cpu.cfs_quota_us``/``cpu.cfs_period_us`` on v1).
Workers beyond that take turns on the same CPUs: ``scripts/bench`` measured about 1.2x
the CPU per request for two workers on one core, and HAProxy's two threads the same.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")


def parse_cpu_max(text: str) -> float | None:
    """cgroup v2 ``cpu.max`` (``"max 100000"`` or ``"150000 100000"``) → CPUs, or None
    when unlimited."""
    fields = text.split()
    if len(fields) != 2:
        raise ValueError(f"cpu.max {text.strip()!r}: expected '<quota|max> <period>'")
    quota, period = fields
    return None if quota == "max" else _ratio(quota, period, "cpu.max")


def parse_cfs(quota: str, period: str) -> float | None:
    """cgroup v1 ``cpu.cfs_quota_us`` and ``cpu.cfs_period_us`` → CPUs, or None (-1)."""
    return None if quota.strip() == "-1" else _ratio(quota, period, "cpu.cfs_quota_us")


def _ratio(quota: str, period: str, what: str) -> float:
    try:
        q, p = int(quota), int(period)
    except ValueError:
        raise ValueError(f"{what} {quota.strip()!r}/{period.strip()!r}: not integers") from None
    if q <= 0 or p <= 0:
        raise ValueError(f"{what} {q}/{p}: quota and period must be positive")
    return q / p


def cgroup_limit(root: Path = CGROUP) -> float | None:
    """The CPU quota of this process's cgroup in CPUs, or None when there is none or it
    cannot be read (no cgroup filesystem: the affinity alone decides)."""
    try:
        if (root / "cpu.max").exists():
            return parse_cpu_max((root / "cpu.max").read_text())
        v1 = root / "cpu"
        if (v1 / "cpu.cfs_quota_us").exists():
            quota = (v1 / "cpu.cfs_quota_us").read_text()
            return parse_cfs(quota, (v1 / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return None


@dataclass(frozen=True)
class Cpus:
    affinity: int  # CPUs the scheduler may run the process on
    limit: float | None  # the cgroup quota in CPUs; None: unlimited

    @property
    def usable(self) -> int:
        """Whole CPUs the workers can keep busy at once (at least one)."""
        if self.limit is None:
            return self.affinity
        return max(1, min(self.affinity, math.ceil(self.limit)))

    def describe(self) -> str:
        limit = "none" if self.limit is None else f"{self.limit:g}"
        return f"{self.usable} usable (affinity {self.affinity}, cgroup CPU limit {limit})"


def current() -> Cpus:
    return Cpus(len(os.sched_getaffinity(0)), cgroup_limit())


def oversubscribed(workers: int, cpus: Cpus) -> str | None:
    """The startup warning when ``--workers`` exceeds the usable CPUs, else None."""
    if workers <= cpus.usable:
        return None
    return (
        f"--workers {workers} with CPUs {cpus.describe()}: the workers take turns on the "
        "same CPUs, which costs CPU per request (about 1.2x for two on one core) and adds "
        f"latency; use --workers {cpus.usable} or give the proxy more CPU"
    )
