"""Who this sidecar reports as: the workload identity behind every metric label.

Resolved once at start from the pod's env (the downward API in ``meshed-pod.yaml``):
an explicit ``--workload``, else the pod's ``app`` label, else the Deployment /
StatefulSet / DaemonSet name recovered from ``POD_NAME`` by stripping Kubernetes'
generated suffixes, else ``unknown``. Pure: the env is passed in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

UNKNOWN = "unknown"
# Kubernetes builds generated name suffixes from this alphabet (no vowels, no 0/1/3).
_SAFE = "bcdfghjklmnpqrstvwxz2456789"
_POD_SUFFIX = re.compile(f"^[{_SAFE}]{{5}}$")
_TEMPLATE_HASH = re.compile(f"^[{_SAFE}]{{6,10}}$")
_ORDINAL = re.compile(r"^\d+$")
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$")


@dataclass(frozen=True)
class Workload:
    name: str  # source_workload on outbound, the local service on inbound
    version: str = UNKNOWN
    namespace: str = ""
    pod: str = ""

    @property
    def service_name(self) -> str:
        """Zipkin's localEndpoint.serviceName, Istio style: ``app.namespace``."""
        return f"{self.name}.{self.namespace}" if self.namespace else self.name


def workload_from_pod_name(pod: str) -> str:
    """``reviews-v1-545db77b95-x7k2p`` → ``reviews-v1``; ``web-0`` → ``web``."""
    parts = pod.split("-")
    if len(parts) >= 2 and _POD_SUFFIX.match(parts[-1]):
        parts.pop()  # the pod's random suffix (Deployment or DaemonSet pod)
        if len(parts) >= 2 and _TEMPLATE_HASH.match(parts[-1]):
            parts.pop()  # the ReplicaSet's pod-template-hash (Deployment pod)
    elif len(parts) >= 2 and _ORDINAL.match(parts[-1]):
        parts.pop()  # StatefulSet ordinal
    return "-".join(parts)


def _clean(value: str | None) -> str:
    """A label value as given, or "" when it is missing or not a Kubernetes label value."""
    value = (value or "").strip()
    return value if _LABEL_VALUE.match(value) else ""


def resolve_workload(flag: str, env: Mapping[str, str]) -> Workload:
    """``flag`` is ``--workload`` (``unknown`` when not given)."""
    pod = _clean(env.get("POD_NAME"))
    name = (
        _clean(flag if flag != UNKNOWN else "")
        or _clean(env.get("MESH_WORKLOAD_APP"))
        or (workload_from_pod_name(pod) if pod else "")
        or UNKNOWN
    )
    version = _clean(env.get("MESH_WORKLOAD_VERSION")) or UNKNOWN
    return Workload(name, version, _clean(env.get("POD_NAMESPACE")), pod)
