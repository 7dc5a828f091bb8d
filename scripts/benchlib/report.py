"""The printed table (figures, ratios, targets) and the JSON written next to it."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from scripts.benchlib.results import Figures, Sample, Target

COLUMNS = (
    ("config", None, "{}"),
    ("req/s", "rps", "{:.0f}"),
    ("p50 ms", "wrk_p50_ms", "{:.2f}"),
    ("p99 ms", "wrk_p99_ms", "{:.2f}"),
    ("+p50@1k", "added_p50_ms", "{:+.3f}"),
    ("+p99@1k", "added_p99_ms", "{:+.3f}"),
    ("CPUms/1k", "cpu_ms_per_1k", "{:.1f}"),
    ("@1k rate", "cpu_ms_per_1k_at_rate", "{:.1f}"),
    ("RSS MiB", "rss_mib", "{:.1f}"),
    ("bulk MiB/s", "bulk_mib_s", "{:.0f}"),
)


def cell(fmt: str, value: float | str | None) -> str:
    return "-" if value is None else fmt.format(value)


def table(figures: Mapping[str, Figures]) -> str:
    rows = [[title for title, _, _ in COLUMNS]]
    for setup, figs in figures.items():
        rows.append([setup, *(cell(fmt, figs.get(key)) for _, key, fmt in COLUMNS[1:] if key)])
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    lines = [
        "  ".join(
            c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def ratio_lines(ratios: Mapping[str, Mapping[str, float | None]]) -> str:
    names = {
        "rps": "req/s",
        "wrk_p99_ms": "p99",
        "ol_p99_ms": "p99@1k",
        "cpu_ms_per_1k": "CPU/req",
        "cpu_ms_per_1k_at_rate": "CPU/req@1k",
        "rss_mib": "RSS",
        "bulk_mib_s": "bulk",
    }
    out = []
    for pair, values in ratios.items():
        parts = [f"{names[m]} {v:.2f}x" for m, v in values.items() if v is not None]
        out.append(f"  {pair:<26} " + ", ".join(parts))
    return "\n".join(out)


FLOOR_WHAT = {
    "h11": "the parse and serialize calls of one proxied exchange",
    "llhttp": "httptools parsing one request and one response, the forwarded heads joined",
}


def floor_lines(floors: Mapping[str, float], haproxy_http: float | None) -> str:
    """The codecs alone (no I/O, warm caches), next to HAProxy http's whole cost; the
    bare llhttp forwarder is a row of the table (``llhttp-bare``)."""
    out = []
    for codec, us in floors.items():
        versus = f" = {us / haproxy_http:.2f}x HAProxy http's whole cost" if haproxy_http else ""
        what = FLOOR_WHAT.get(codec, "the codec calls of one proxied exchange")
        out.append(
            f"{codec} alone ({what}; no I/O, warm caches): "
            f"{us:.1f} CPU-ms per 1,000 requests{versus}"
        )
    return "\n" + "\n".join(out)


def target_lines(targets: Sequence[Target]) -> str:
    out = []
    for t in targets:
        value = "-" if t.value is None else f"{t.value:.2f}"
        bound = f"{'<=' if t.at_most else '>='} {t.limit:g}"
        peer = "" if t.peer is None else f"; {t.peer_name}: {t.peer:.2f}"
        out.append(f"  {t.verdict:<12} {t.name:<38} {value:>9}  (target {bound}{peer})")
    return "\n".join(out)


def document(
    meta: Mapping[str, Any],
    samples: Sequence[Sample],
    figures: Mapping[str, Figures],
    ratios: Mapping[str, Mapping[str, float | None]],
    targets: Sequence[Target],
) -> dict[str, Any]:
    return {
        "meta": dict(meta),
        "medians": {k: dict(v) for k, v in figures.items()},
        "ratios": {k: dict(v) for k, v in ratios.items()},
        "targets": [{**asdict(t), "verdict": t.verdict} for t in targets],
        "samples": [{"setup": s.setup, "rep": s.rep, **s.figures} for s in samples],
    }


def write_json(directory: Path, stamp: str, doc: Mapping[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{stamp}.json"
    path.write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n")
    return path
