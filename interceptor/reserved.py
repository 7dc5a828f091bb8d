"""The sidecar's ports in ``net.ipv4.ip_local_reserved_ports``, as data (pure; no I/O).

An app whose ephemeral range covers 15000-15090 can be handed 15020 as the local port
of an outgoing connection, and the proxy then cannot listen there. Reserving the ports
keeps the kernel from picking them (IPv6 reads the same sysctl); explicit binds still
work. We only ever add to what is reserved, and remove takes back only what install
added (the ``added`` record), so a user's own reservation is never dropped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from interceptor.options import RESERVED_INBOUND_PORTS, Options

SYSCTL = "net.ipv4.ip_local_reserved_ports"
RANGE_SYSCTL = "net.ipv4.ip_local_port_range"


def proxy_ports(opts: Options) -> frozenset[int]:
    """Every port the sidecar listens on: both capture ports and its own ports."""
    return frozenset({opts.outbound_port, opts.inbound_port, *RESERVED_INBOUND_PORTS})


def parse_ports(text: str) -> frozenset[int]:
    """The sysctl's text (``15000-15001,15006``, empty when nothing is reserved)."""
    ports: set[int] = set()
    for item in text.replace("\n", "").split(","):
        item = item.strip()
        if not item:
            continue
        low, dash, high = item.partition("-")
        if not low.isdigit() or (dash and not high.isdigit()):
            raise ValueError(f"{SYSCTL}: {item!r} is not a port or a port range")
        first, last = int(low), int(high or low)
        if not 0 <= first <= last <= 65535:
            raise ValueError(f"{SYSCTL}: {item!r} is not a port or a port range")
        ports.update(range(first, last + 1))
    return frozenset(ports)


def render_ports(ports: Iterable[int]) -> str:
    """Sorted, consecutive ports folded into ranges, the way the kernel prints them."""
    out: list[str] = []
    run: list[int] = []
    for port in sorted(set(ports)):
        if run and port == run[-1] + 1:
            run.append(port)
            continue
        if run:
            out.append(_span(run))
        run = [port]
    if run:
        out.append(_span(run))
    return ",".join(out)


def _span(run: list[int]) -> str:
    return str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}"


@dataclass(frozen=True)
class Reservation:
    """What install does to the sysctl: from ``before`` to ``after``.

    ``recorded`` is what an earlier install added (its record), so a re-run with other
    ports gives back the ones no longer wanted; ``added`` is the new record.
    """

    wanted: frozenset[int]
    before: frozenset[int]
    recorded: frozenset[int] = frozenset()

    @property
    def after(self) -> frozenset[int]:
        return (self.before - (self.recorded - self.wanted)) | self.wanted

    @property
    def added(self) -> frozenset[int]:
        return (self.recorded & self.wanted) | (self.wanted - self.before)

    @property
    def changes(self) -> bool:
        return self.after != self.before


def released(current: frozenset[int], recorded: frozenset[int]) -> frozenset[int]:
    """What remove leaves: the current value without the ports install added."""
    return current - recorded


def missing(wanted: frozenset[int], current: frozenset[int]) -> frozenset[int]:
    return wanted - current


def in_range(ports: Iterable[int], port_range: tuple[int, int] | None) -> list[int]:
    """The ports an outgoing connection could be handed (inside the ephemeral range)."""
    if port_range is None:
        return []
    low, high = port_range
    return sorted(p for p in ports if low <= p <= high)


def parse_range(text: str) -> tuple[int, int]:
    """``ip_local_port_range`` (``32768\\t60999``) as (low, high)."""
    parts = text.split()
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise ValueError(f"{RANGE_SYSCTL}: {text.strip()!r} is not two port numbers")
    return int(parts[0]), int(parts[1])
