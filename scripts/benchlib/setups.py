"""The configurations one bench run alternates between, and the run's timing plan."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Setup:
    name: str
    kind: str  # direct | mesh | haproxy
    mode: str  # tcp | http: what the proxy is told the destination speaks
    workers: int = 1
    bulk: bool = False  # also measure a 256 MiB transfer

    @property
    def proxied(self) -> bool:
        return self.kind != "direct"


DIRECT = Setup("direct", "direct", "tcp", bulk=True)
MESH_L4 = Setup("mesh-l4", "mesh", "tcp", bulk=True)
MESH_L7 = Setup("mesh-l7", "mesh", "http")
MESH_L7_W2 = Setup("mesh-l7-w2", "mesh", "http", workers=2)
HAPROXY_TCP = Setup("haproxy-tcp", "haproxy", "tcp", bulk=True)
HAPROXY_HTTP = Setup("haproxy-http", "haproxy", "http")
ALL = (DIRECT, MESH_L4, MESH_L7, MESH_L7_W2, HAPROXY_TCP, HAPROXY_HTTP)


@dataclass(frozen=True)
class Plan:
    reps: int
    warmup_s: int  # wrk takes whole seconds
    saturate_s: int
    open_loop_s: float
    rate: float = 1000.0
    connections: int = 16
    bulk_mib: int = 256


QUICK = Plan(reps=3, warmup_s=1, saturate_s=1, open_loop_s=1.5)
FULL = Plan(reps=5, warmup_s=1, saturate_s=5, open_loop_s=5.0)


def select(names: list[str]) -> tuple[Setup, ...]:
    """The named setups in canonical order; ``direct`` is always kept (the baseline)."""
    known = {s.name: s for s in ALL}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown configuration {', '.join(unknown)}; known: {', '.join(known)}")
    wanted = {*names, DIRECT.name}
    return tuple(s for s in ALL if s.name in wanted)
