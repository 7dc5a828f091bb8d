"""From per-rep samples to the reported figures: medians, added latency, ratios, targets.

Every figure is the median over reps of one configuration. A figure that a
configuration does not have (no proxy CPU for ``direct``, no bulk at L7) is ``None``,
and a ratio or target that needs it is reported as not measured instead of guessed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from scripts.benchlib.setups import HAPROXY_HTTP_T2, LLHTTP_BARE, MESH_L7, MESH_L7_W2
from scripts.benchlib.stats import median

Figures = dict[str, float | None]

METRICS = (
    "rps", "wrk_p50_ms", "wrk_p99_ms", "wrk_errors", "ol_p50_ms", "ol_p99_ms", "ol_errors",
    "cpu_ms_per_1k", "cpu_ms_per_1k_at_rate", "rss_mib", "bulk_mib_s",
)  # fmt: skip


@dataclass(frozen=True)
class Sample:
    setup: str
    rep: int
    figures: Mapping[str, float | None]


def aggregate(samples: Sequence[Sample]) -> dict[str, Figures]:
    """setup → metric → median over reps (``None`` when no rep measured it)."""
    by_setup: dict[str, list[Sample]] = {}
    for s in samples:
        by_setup.setdefault(s.setup, []).append(s)
    out: dict[str, Figures] = {}
    for setup, reps in by_setup.items():
        figs: Figures = {}
        for m in METRICS:
            values = [v for r in reps if (v := r.figures.get(m)) is not None]
            figs[m] = median(values) if values else None
        out[setup] = figs
    return out


def add_latency_over(figures: dict[str, Figures], baseline: str = "direct") -> None:
    """``added_p50_ms``/``added_p99_ms``: open-loop latency minus the baseline's."""
    base = figures.get(baseline, {})
    for figs in figures.values():
        for q in ("p50", "p99"):
            mine, theirs = figs.get(f"ol_{q}_ms"), base.get(f"ol_{q}_ms")
            figs[f"added_{q}_ms"] = None if mine is None or theirs is None else mine - theirs


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


RATIO_METRICS = (
    "rps", "wrk_p99_ms", "ol_p99_ms", "cpu_ms_per_1k", "cpu_ms_per_1k_at_rate", "rss_mib",
    "bulk_mib_s",
)  # fmt: skip


def ratio_pairs(names: Sequence[str]) -> list[tuple[str, str]]:
    """Each proxy against its own kind's HAProxy (L7 stands, whatever their codec, also
    against the bare llhttp forwarder), two workers or threads against one, then
    everything against direct."""
    l7 = [n for n in names if n.startswith("mesh-l7")]
    pairs = [("mesh-l4", "haproxy-tcp")]
    pairs += [(n, "haproxy-http") for n in l7]
    pairs += [(MESH_L7_W2.name, MESH_L7.name), (HAPROXY_HTTP_T2.name, "haproxy-http")]
    pairs += [(n, LLHTTP_BARE.name) for n in l7]
    pairs.append((LLHTTP_BARE.name, "haproxy-http"))
    pairs += [(n, "direct") for n in ("mesh-l4", *l7, "haproxy-tcp", "haproxy-http")]
    return pairs


def ratios(figures: Mapping[str, Figures]) -> dict[str, dict[str, float | None]]:
    """``"a/b"`` → metric → a's figure ÷ b's, for the pairs both measured."""
    out: dict[str, dict[str, float | None]] = {}
    for a, b in ratio_pairs(list(figures)):
        if a in figures and b in figures:
            out[f"{a}/{b}"] = {
                m: ratio(figures[a].get(m), figures[b].get(m)) for m in RATIO_METRICS
            }
    return out


@dataclass(frozen=True)
class Target:
    name: str
    value: float | None
    limit: float
    at_most: bool  # True: value <= limit passes; False: value >= limit passes
    peer: float | None = None  # the same figure for the peer (HAProxy), for context only
    peer_name: str = ""

    @property
    def verdict(self) -> str:
        if self.value is None:
            return "not measured"
        ok = self.value <= self.limit if self.at_most else self.value >= self.limit
        return "PASS" if ok else "FAIL"


def _get(figures: Mapping[str, Figures], setup: str, metric: str) -> float | None:
    return figures.get(setup, {}).get(metric)


def _ratio_of(figures: Mapping[str, Figures], a: str, b: str, metric: str) -> float | None:
    return ratio(_get(figures, a, metric), _get(figures, b, metric))


REST_RSS_LIMIT_MIB = 40.0  # per worker, at rest, with a 100-service config (issue 8)
IDLE_CPU_LIMIT_MS_S = 0.2  # an idle sidecar's CPU per second (issue 14; HAProxy ~0.1)


def rest_rss(rest: Mapping[str, float]) -> float | None:
    """The largest per-worker RSS at rest (one worker alone, or any of two workers)."""
    values = [rest[k] for k in ("rest_rss_mib_1w", "rest_rss_mib_worker_max") if k in rest]
    return max(values) if values else None


def targets(
    figures: Mapping[str, Figures], rest: Mapping[str, float] | None = None
) -> list[Target]:
    """The figures the proxy is held to (issues 8 and 14), L7 ones on ``MESH_L7``: the
    codec ``auto`` picks."""
    cpu, bulk, added = "cpu_ms_per_1k", "bulk_mib_s", "added_p99_ms"
    l7, bare = MESH_L7.name, LLHTTP_BARE.name
    return [
        Target(
            "L7 CPU/request ÷ HAProxy http", _ratio_of(figures, l7, "haproxy-http", cpu), 2.5, True
        ),
        Target(
            "L7 CPU/request ÷ bare llhttp forwarder", _ratio_of(figures, l7, bare, cpu), 2.0, True
        ),
        Target(
            "L7 req/s ÷ HAProxy http", _ratio_of(figures, l7, "haproxy-http", "rps"), 0.4, False
        ),
        Target("L7 CPU-ms per 1,000 requests", _get(figures, l7, cpu), 200.0, True),
        Target("L7 p99 added at 1,000 req/s (ms)", _get(figures, l7, added), 0.5, True),
        Target("L4 p99 added at 1,000 req/s (ms)", _get(figures, "mesh-l4", added), 1.0, True),
        Target(
            "L4 CPU/request ÷ HAProxy tcp",
            _ratio_of(figures, "mesh-l4", "haproxy-tcp", cpu),
            1.2,
            True,
        ),
        Target(
            "L4 bulk ÷ HAProxy tcp bulk",
            _ratio_of(figures, "mesh-l4", "haproxy-tcp", bulk),
            0.8,
            False,
        ),
        Target(
            "--workers 2 CPU/request ÷ 1 worker",
            _ratio_of(figures, MESH_L7_W2.name, l7, cpu),
            1.1,
            True,
            # Both workers share the one pinned core, as HAProxy's two threads do.
            peer=_ratio_of(figures, HAPROXY_HTTP_T2.name, "haproxy-http", cpu),
            peer_name="HAProxy nbthread 2 ÷ 1, same core",
        ),
        Target(
            "idle sidecar CPU, 100 services (ms per second)",
            None if rest is None or "idle_cpu_us_s" not in rest else rest["idle_cpu_us_s"] / 1000,
            IDLE_CPU_LIMIT_MS_S,
            True,
        ),
        Target(
            "RSS per worker at rest, 100 services (MiB)",
            rest_rss(rest or {}),
            REST_RSS_LIMIT_MIB,
            True,
        ),
    ]


L7_ENGAGED = "mesh-l7: istio_requests_total counted every open-loop request (L7 engine engaged)"
L7_NOT_ENGAGED = (
    "mesh-l7: istio_requests_total counted only {share:.0%} of the open-loop requests: the "
    "rest went through the L4 relay (L7 not wired in the running proxy, or detection fell back)"
)


def l7_note(samples: Sequence[Sample]) -> str | None:
    """Whether the L7 configurations really ran at L7 (``ol_l7_share`` of every rep)."""
    shares = [s.figures.get("ol_l7_share") for s in samples if s.setup.startswith("mesh-l7")]
    if not shares:
        return None
    least = min(share or 0.0 for share in shares)
    return L7_ENGAGED if least >= 0.99 else L7_NOT_ENGAGED.format(share=least)
