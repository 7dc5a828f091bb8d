"""install / remove / plan / dump / verify for the port reservation (``reserved``'s sysctl).

Install writes the sysctl before any rule, and ``Applied.undo`` puts the old value back
if the rules then fail, so the reservation is part of the same all-or-nothing install.
Nothing is written when every port is reserved already (a pod spec's
``securityContext.sysctls`` may have done it), so a read-only ``/proc/sys`` is fine then.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from interceptor.errors import ApplyFailed
from interceptor.options import Options
from interceptor.reserved import (
    RANGE_SYSCTL,
    SYSCTL,
    Reservation,
    in_range,
    missing,
    proxy_ports,
    released,
    render_ports,
)
from interceptor.sysctl import Sysctls

_SHARED = "one reservation for both address families"
NOTHING = "the proxy's ports are reserved already, nothing changed"


def _show(ports: frozenset[int]) -> str:
    return render_ports(ports) or "(empty)"


def _read(sysctls: Sysctls) -> frozenset[int]:
    try:
        return sysctls.reserved()
    except (OSError, ValueError) as e:
        raise ApplyFailed(f"cannot read {SYSCTL}: {e}; nothing was changed") from e


def plan_text(opts: Options, sysctls: Sysctls) -> str:
    """What install will set, as restore-file comments (``plan`` touches nothing)."""
    wanted = proxy_ports(opts)
    head = f"# {SYSCTL} ({_SHARED})\n"
    if not opts.reserve_ports:
        return head + "# not changed: --reserve-ports is off\n"
    try:
        r = Reservation(wanted, sysctls.reserved(), sysctls.record())
    except (OSError, ValueError) as e:
        return head + f"# reserve {_show(wanted)}; current value unreadable ({e})\n"
    return head + (
        f"# reserve {_show(wanted)} (the proxy's ports)\n"
        f"# now: {_show(r.before)}\n"
        f"# after install: {_show(r.after)}{'' if r.changes else ' (unchanged)'}\n"
    )


@dataclass
class Applied:
    """What install changed, and how to take it back."""

    sysctls: Sysctls
    before: frozenset[int]
    record_before: frozenset[int]
    changed: bool
    lines: tuple[str, ...]

    def undo(self) -> None:
        """After the rules failed: the value and the record as they were."""
        if not self.changed:
            return
        try:
            self.sysctls.set_reserved(self.before)
            self.sysctls.set_record(self.record_before)
        except OSError as e:
            raise ApplyFailed(
                f"the rules failed, and putting {SYSCTL} back to {_show(self.before)} "
                f"failed too ({e}): run `mesh-interceptor remove`"
            ) from e


def install(opts: Options, sysctls: Sysctls) -> Applied:
    """Add the proxy's ports to the reservation (first of install's changes)."""
    if not opts.reserve_ports:
        return Applied(sysctls, frozenset(), frozenset(), False, ())
    r = Reservation(proxy_ports(opts), _read(sysctls), sysctls.record())
    if not r.changes:
        return Applied(sysctls, r.before, r.recorded, False, (f"{SYSCTL}: {NOTHING}",))
    try:
        sysctls.set_reserved(r.after)
    except OSError as e:
        raise ApplyFailed(
            f"cannot set {SYSCTL} to {_show(r.after)}: {e.strerror or e}. Without it an "
            f"app's outgoing connection can take one of the proxy's ports "
            f"({_show(r.wanted)}). Set it in the pod's securityContext.sysctls, or install "
            "with --no-reserve-ports (MESH_RESERVE_PORTS=off); nothing was changed"
        ) from e
    lines = [f"{SYSCTL}: {_show(r.before)} -> {_show(r.after)}"]
    try:
        sysctls.set_record(r.added)
    except OSError as e:  # bookkeeping only: the pod is protected either way
        lines.append(f"warning: no record of the ports added ({e}); remove will keep them")
    return Applied(sysctls, r.before, r.recorded, True, tuple(lines))


def remove(sysctls: Sysctls, rules_found: bool) -> list[str]:
    """Give back the ports install added (its record), and nothing else.

    Only when our rules were there too: then install ran in this very namespace, and
    the record is its own, not one left by a dead namespace that had the same inode.
    """
    recorded = sysctls.record()
    if not recorded or not rules_found:
        return [f"{SYSCTL}: no ports reserved by install, left as is"]
    current = _read(sysctls)
    after = released(current, recorded)
    try:
        if after != current:
            sysctls.set_reserved(after)
        sysctls.set_record(frozenset())
    except OSError as e:
        raise ApplyFailed(f"cannot give back {_show(recorded)} in {SYSCTL}: {e}") from e
    return [f"{SYSCTL}: {_show(current)} -> {_show(after)}"]


def verify(opts: Options, sysctls: Sysctls) -> list[str]:
    """A line per problem: the proxy's ports that are not reserved."""
    if not opts.reserve_ports:
        return []
    try:
        current = sysctls.reserved()
    except (OSError, ValueError) as e:
        return [f"{SYSCTL}: cannot read it: {e}"]
    lacking = missing(proxy_ports(opts), current)
    if not lacking:
        return []
    return [
        f"{SYSCTL}: ports {_show(lacking)} are not reserved (value {_show(current)}): "
        "an outgoing connection can take them and the proxy then cannot listen; "
        "run `mesh-interceptor install`"
    ]


def dump_text(opts: Options, sysctls: Sysctls) -> str:
    """What is set now, and the proxy's ports an app's connection could be handed."""
    doc = dump_doc(opts, sysctls)
    lines = [f"# {SYSCTL} ({_SHARED})"]
    if "error" in doc:
        lines.append(f"  unreadable: {doc['error']}")
        return "\n".join(lines) + "\n"
    lines.append(f"  {doc['reserved'] or '(empty)'}")
    low_high = doc["port_range"]
    lines.append(f"# {RANGE_SYSCTL}: {' '.join(map(str, low_high)) if low_high else 'unknown'}")
    exposed = doc["exposed"]
    if exposed:
        lines.append(f"  proxy ports an outgoing connection could take: {render_ports(exposed)}")
    return "\n".join(lines) + "\n"


def dump_doc(opts: Options, sysctls: Sysctls) -> dict[str, Any]:
    try:
        current = sysctls.reserved()
    except (OSError, ValueError) as e:
        return {"sysctl": SYSCTL, "error": str(e)}
    port_range = sysctls.port_range()
    wanted = proxy_ports(opts)
    return {
        "sysctl": SYSCTL,
        "reserved": render_ports(current),
        "port_range": list(port_range) if port_range else None,
        "exposed": in_range(wanted - current, port_range),
    }
