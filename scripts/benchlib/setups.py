"""The configurations one bench run alternates between, and the run's timing plan.

The L7 sidecar runs once per codec in the registry (``mesh-l7-h11``,
``mesh-l7-llhttp``); ``--workers 2`` and the targets use the codec ``auto`` picks.
Every mesh stand runs the compiled build (``scripts/build``, ``proxy.compiled``);
``mesh-l7-<codec>-source`` runs the same sidecar from its Python source
(``MESH_PURE=1``), so each run shows what compiling buys. ``llhttp-bare`` is the
floor: a bare httptools forwarder in the same place.
"""

from __future__ import annotations

from dataclasses import dataclass

from proxy.http.codec import CODECS
from proxy.process.options import resolve_codec


@dataclass(frozen=True)
class Setup:
    name: str
    kind: str  # direct | mesh | haproxy | bare (the bare llhttp forwarder)
    mode: str  # tcp | http: what the proxy is told the destination speaks
    workers: int = 1  # mesh: --workers; haproxy: nbthread
    bulk: bool = False  # also measure a 256 MiB transfer
    codec: str | None = None  # mesh at L7: its --http-codec
    source: bool = False  # mesh: run the Python source, not the compiled build

    @property
    def proxied(self) -> bool:
        return self.kind != "direct"


DIRECT = Setup("direct", "direct", "tcp", bulk=True)
MESH_L4 = Setup("mesh-l4", "mesh", "tcp", bulk=True)
DEFAULT_CODEC = resolve_codec("auto")
MESH_L7_BY_CODEC = {c: Setup(f"mesh-l7-{c}", "mesh", "http", codec=c) for c in sorted(CODECS)}
MESH_L7 = MESH_L7_BY_CODEC[DEFAULT_CODEC]  # the sidecar as shipped: what targets read
MESH_L7_SOURCE = Setup(
    f"mesh-l7-{DEFAULT_CODEC}-source", "mesh", "http", codec=DEFAULT_CODEC, source=True
)
MESH_L7_W2 = Setup(f"mesh-l7-w2-{DEFAULT_CODEC}", "mesh", "http", workers=2, codec=DEFAULT_CODEC)
HAPROXY_TCP = Setup("haproxy-tcp", "haproxy", "tcp", bulk=True)
HAPROXY_HTTP = Setup("haproxy-http", "haproxy", "http")
# The peer for ``--workers 2``: HAProxy with two threads on the same one pinned core.
HAPROXY_HTTP_T2 = Setup("haproxy-http-t2", "haproxy", "http", workers=2)
LLHTTP_BARE = Setup("llhttp-bare", "bare", "http")
ALL = (
    DIRECT,
    MESH_L4,
    *MESH_L7_BY_CODEC.values(),
    MESH_L7_SOURCE,
    MESH_L7_W2,
    HAPROXY_TCP,
    HAPROXY_HTTP,
    HAPROXY_HTTP_T2,
    LLHTTP_BARE,
)


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
