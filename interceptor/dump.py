"""``dump``: the live nat tables of both families and both iptables variants, ours marked.

Legacy and nft tables are separate kernel objects, and rules hiding in the variant
nobody looks at are the classic mesh bug (istio#15519, linkerd2#9053), so dump shows
both. Rules are shown as iptables-save wrote them, with packet/byte counters; ours
(``MESH_`` chains and jumps into them) carry a ``*``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from interceptor.backends.base import LiveTable
from interceptor.backends.restore import VARIANTS, read_table
from interceptor.errors import BackendError, BackendUnavailable
from interceptor.model import Family
from interceptor.render import quote

Reader = Callable[[str, Family, str], LiveTable]


@dataclass(frozen=True)
class Section:
    variant: str
    family: Family
    table: LiveTable | None
    error: str = ""


def read_sections(reader: Reader = read_table) -> list[Section]:
    out: list[Section] = []
    for variant in VARIANTS:
        for family in (4, 6):
            fam: Family = 4 if family == 4 else 6
            try:
                out.append(Section(variant, fam, reader(variant, fam, "nat")))
            except (BackendError, BackendUnavailable) as e:
                out.append(Section(variant, fam, None, str(e)))
    return out


def as_text(sections: list[Section]) -> str:
    lines = ["# * marks our rules (MESH_ chains and jumps into them); [packets:bytes]"]
    for s in sections:
        head = f"# {s.variant} IPv{s.family} nat"
        if s.table is None:
            lines.append(f"{head}: unavailable ({s.error})")
            continue
        if not s.table.chains:
            lines.append(f"{head}: no table")
            continue
        lines.append(head)
        for c in s.table.chains:
            lines.append(f"  :{c.name} {c.policy} [{c.packets}:{c.bytes}]")
        for r in s.table.rules:
            mark = "*" if r.ours else " "
            text = " ".join(["-A", r.rule.chain, *map(quote, r.args)])
            lines.append(f"{mark} [{r.packets}:{r.bytes}] {text}")
    return "\n".join(lines) + "\n"


def as_json(sections: list[Section], sysctl: dict[str, object] | None = None) -> str:
    doc = []
    for s in sections:
        item: dict[str, object] = {"backend": s.variant, "family": s.family, "table": "nat"}
        if s.table is None:
            item["error"] = s.error
        else:
            item["exists"] = bool(s.table.chains)
            item["chains"] = [
                {"name": c.name, "policy": c.policy, "packets": c.packets, "bytes": c.bytes}
                for c in s.table.chains
            ]
            item["rules"] = [
                {
                    "chain": r.rule.chain,
                    "position": r.position,
                    "args": list(r.args),
                    "target": r.rule.target,
                    "comment": r.rule.comment,
                    "packets": r.packets,
                    "bytes": r.bytes,
                    "ours": r.ours,
                }
                for r in s.table.rules
            ]
        doc.append(item)
    whole: dict[str, object] = {"tables": doc}
    if sysctl is not None:
        whole["reserved_ports"] = sysctl
    return json.dumps(whole, indent=2) + "\n"
