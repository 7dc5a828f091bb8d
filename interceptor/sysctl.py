"""The two port sysctls of this network namespace, and install's record (the only I/O).

``/proc/sys/net`` is per network namespace, so reading and writing it here acts on the
pod's own values. What install added to the reservation is recorded in a small file
keyed by the namespace's inode, so that ``remove`` (another process, later) gives back
exactly that. ``MemorySysctls`` is the recording fake the tests use.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from typing import Protocol

from interceptor.reserved import parse_ports, parse_range, render_ports

PROC = "/proc/sys/net/ipv4"
RECORD_DIR = "/run/mesh-interceptor"


class Sysctls(Protocol):
    def reserved(self) -> frozenset[int]: ...

    def set_reserved(self, ports: frozenset[int]) -> None: ...

    def port_range(self) -> tuple[int, int] | None: ...

    def record(self) -> frozenset[int]: ...

    def set_record(self, ports: frozenset[int]) -> None:
        """Remember ``ports`` as install's own (empty: forget); raises OSError."""


@dataclass
class ProcSysctls:
    """The running namespace's ``/proc/sys``; ``record_dir`` holds install's record."""

    proc: str = PROC
    record_dir: str = RECORD_DIR

    def _read(self, name: str) -> str:
        with open(os.path.join(self.proc, name), encoding="ascii") as f:
            return f.read()

    def reserved(self) -> frozenset[int]:
        return parse_ports(self._read("ip_local_reserved_ports"))

    def set_reserved(self, ports: frozenset[int]) -> None:
        # One write replaces the whole bitmap; an empty line clears it.
        with open(os.path.join(self.proc, "ip_local_reserved_ports"), "w", encoding="ascii") as f:
            f.write(render_ports(ports) + "\n")

    def port_range(self) -> tuple[int, int] | None:
        try:
            return parse_range(self._read("ip_local_port_range"))
        except (OSError, ValueError):
            return None

    def _record_path(self) -> str:
        # The namespace's inode tells this pod's record from another's on a shared /run.
        ino = os.stat("/proc/self/ns/net").st_ino
        return os.path.join(self.record_dir, f"reserved-ports-netns-{ino}")

    def record(self) -> frozenset[int]:
        try:
            with open(self._record_path(), encoding="ascii") as f:
                return parse_ports(f.read())
        except (FileNotFoundError, ValueError):
            return frozenset()

    def set_record(self, ports: frozenset[int]) -> None:
        path = self._record_path()
        if not ports:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            return
        os.makedirs(self.record_dir, mode=0o755, exist_ok=True)
        tmp = f"{path}.tmp"
        with open(tmp, "w", encoding="ascii") as f:
            f.write(render_ports(ports) + "\n")
        os.replace(tmp, path)


@dataclass
class MemorySysctls:
    """A namespace in memory for tests; ``writes`` records every sysctl write."""

    value: frozenset[int] = frozenset()
    range_: tuple[int, int] | None = (32768, 60999)
    recorded: frozenset[int] = frozenset()
    writes: list[frozenset[int]] = field(default_factory=list)
    fail_write: OSError | None = None

    def reserved(self) -> frozenset[int]:
        return self.value

    def set_reserved(self, ports: frozenset[int]) -> None:
        if self.fail_write is not None:
            raise self.fail_write
        self.writes.append(ports)
        self.value = ports

    def port_range(self) -> tuple[int, int] | None:
        return self.range_

    def record(self) -> frozenset[int]:
        return self.recorded

    def set_record(self, ports: frozenset[int]) -> None:
        self.recorded = ports
