"""install / remove / verify: read the kernel, compare with the plan, apply one change per table.

Every command starts from what the kernel holds, so re-runs are safe: an install that
matches the kernel touches nothing; otherwise each family gets ONE atomic change
(``interceptor.diff``), then everything is read back and compared by canonical form.
A mismatch (python-iptables dropping a field, a concurrent writer) or a failed apply
puts back what was ours before and raises ``ApplyFailed`` (exit 3).
"""

from __future__ import annotations

from dataclasses import dataclass

from interceptor.backends.base import Backend, LiveTable
from interceptor.diff import change_for, drift, ours
from interceptor.errors import ApplyFailed, BackendError
from interceptor.model import Family
from interceptor.plan import Plan

FAMILIES: tuple[Family, ...] = (4, 6)
NOTHING_CHANGED = "already installed, nothing changed"


@dataclass(frozen=True)
class Report:
    """What a command did, one line per fact, for the CLI to print."""

    changed: bool
    lines: tuple[str, ...]


def _read_all(backend: Backend) -> dict[Family, LiveTable]:
    return {f: backend.read(f) for f in FAMILIES}


def install(plan: Plan, backend: Backend) -> Report:
    """Make the kernel hold exactly ``plan`` (families not planned lose our rules)."""
    before = _read_all(backend)
    todo = [f for f in FAMILIES if drift(plan.for_family(f), before[f])]
    if not todo:
        return Report(False, (f"{backend.name}: {NOTHING_CHANGED}",))
    applied: list[Family] = []
    try:
        for f in todo:
            applied.append(f)  # a failed restore changed nothing; rolling back is harmless
            backend.apply(change_for(plan.for_family(f), before[f]))
        for f in todo:
            left = drift(plan.for_family(f), backend.read(f))
            if left:
                raise ApplyFailed(
                    f"{backend.name}: IPv{f} rules read back differ from the plan: "
                    + "; ".join(left)
                )
    except (BackendError, ApplyFailed) as e:
        _roll_back(backend, before, applied, e)
        raise ApplyFailed(f"install failed and was rolled back: {e}") from e
    lines = [f"{backend.name}: IPv{f} rules installed" for f in todo if plan.for_family(f)]
    lines += [f"{backend.name}: IPv{f} rules removed" for f in todo if not plan.for_family(f)]
    return Report(True, tuple(lines))


def _roll_back(
    backend: Backend, before: dict[Family, LiveTable], families: list[Family], cause: Exception
) -> None:
    for f in reversed(families):
        previous = ours(before[f])
        try:
            current = backend.read(f)
            if drift(previous, current):  # a failed restore left this family as it was
                backend.apply(change_for(previous, current))
        except BackendError as e:
            raise ApplyFailed(
                f"{cause}; rolling back IPv{f} ALSO failed ({e}): run `mesh-interceptor remove`"
            ) from e


def remove(backend: Backend) -> Report:
    """Delete every ``MESH_`` chain and every jump into one; foreign rules stay."""
    lines: list[str] = []
    for f in FAMILIES:
        live = backend.read(f)
        change = change_for(None, live)
        if change.empty:
            continue
        backend.apply(change)
        if ours(backend.read(f)) is not None:
            raise BackendError(f"{backend.name}: IPv{f} still holds MESH_ rules after remove")
        lines.append(
            f"{backend.name}: IPv{f} removed {len(change.delete_chains)} chains "
            f"and {len(change.delete_jumps)} jumps"
        )
    if not lines:
        return Report(False, (f"{backend.name}: no MESH_ rules, nothing changed",))
    return Report(True, tuple(lines))


def verify(plan: Plan, backend: Backend) -> list[str]:
    """Differences between the plan and the kernel, ``IPv<f>: ``-prefixed; empty = in sync."""
    out: list[str] = []
    for f in FAMILIES:
        out += [f"IPv{f}: {line}" for line in drift(plan.for_family(f), backend.read(f))]
    return out
