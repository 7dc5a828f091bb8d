"""CPU time and peak memory of a process tree, from /proc.

CPU is utime+stime from ``/proc/<pid>/stat`` summed over the process and its live
descendants (``--workers`` children), plus cutime+cstime for children that already
exited; a measurement is the difference of two snapshots. Peak RSS is ``VmHWM``
summed over the tree (each worker holds its own copy of the interpreter).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


class ProcGone(RuntimeError):
    """The measured process is no longer there."""


@dataclass(frozen=True)
class Stat:
    pid: int
    ppid: int
    cpu_ticks: int  # utime + stime + cutime + cstime


def parse_stat(text: str) -> Stat:
    """One ``/proc/<pid>/stat`` line; the command name may hold spaces and parentheses."""
    head, sep, rest = text.rpartition(")")
    if not sep:
        raise ValueError(f"not a /proc/<pid>/stat line: {text[:80]!r}")
    fields = rest.split()
    pid = int(head.split("(", 1)[0])
    # After the name: state ppid ... utime(14) stime(15) cutime(16) cstime(17), 1-based.
    utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
    return Stat(pid, int(fields[1]), utime + stime + cutime + cstime)


def parse_hwm_kib(status: str) -> int:
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise ValueError("no VmHWM line in /proc/<pid>/status")


def parse_rss_kib(status: str) -> int:
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise ValueError("no VmRSS line in /proc/<pid>/status")


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None


def all_stats(proc: Path = Path("/proc")) -> dict[int, Stat]:
    out: dict[int, Stat] = {}
    for entry in proc.iterdir():
        if entry.name.isdigit() and (text := _read(entry / "stat")) is not None:
            out[int(entry.name)] = parse_stat(text)
    return out


def tree(root: int, stats: dict[int, Stat]) -> list[int]:
    """``root`` and every descendant found in ``stats``."""
    children: dict[int, list[int]] = {}
    for s in stats.values():
        children.setdefault(s.ppid, []).append(s.pid)
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            out.append(pid)
            todo.extend(children.get(pid, ()))
    return out


def cpu_ms(root: int) -> float:
    stats = all_stats()
    if root not in stats:
        raise ProcGone(f"process {root} exited")
    return sum(stats[p].cpu_ticks for p in tree(root, stats)) * 1000.0 / CLK_TCK


def cpu_ns(root: int, proc: Path = Path("/proc")) -> int:
    """CPU time of ``root``'s tree in nanoseconds, from each thread's ``schedstat``
    (the scheduler's own clock: fine enough for an idle process, unlike ticks)."""
    total = 0
    for pid in tree(root, all_stats(proc)):
        try:
            tasks = list((proc / str(pid) / "task").iterdir())
        except FileNotFoundError:
            continue
        for task in tasks:
            text = _read(task / "schedstat")
            if text:
                total += int(text.split()[0])
    return total


def peak_rss_mib(root: int) -> float:
    stats = all_stats()
    total = 0
    for pid in tree(root, stats):
        status = _read(Path(f"/proc/{pid}/status"))
        if status is not None:
            total += parse_hwm_kib(status)
    return total / 1024.0


def rss_mib_by_pid(root: int) -> dict[int, float]:
    """Current resident memory of ``root`` and each descendant (workers), in MiB."""
    out: dict[int, float] = {}
    for pid in tree(root, all_stats()):
        status = _read(Path(f"/proc/{pid}/status"))
        if status is not None:
            out[pid] = parse_rss_kib(status) / 1024.0
    return out
