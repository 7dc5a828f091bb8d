"""What injection adds to one pod spec: the ``mesh-init`` and ``mesh-proxy`` containers.

The shape is ``docker/k8s/meshed-pod.yaml``: ``mesh-init`` installs the capture rules
(root, NET_ADMIN/NET_RAW, SETUID/SETGID for its validation probe) and leaves a copy of
them on a shared ``emptyDir``; ``mesh-proxy`` follows as a native sidecar (an init
container with ``restartPolicy: Always``) running as 1337. Every dict is built fresh
per pod, so the YAML never shares objects between pods.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from interceptor import options as capture
from proxy.inject.documents import InjectError, PodTemplate

INIT_NAME = "mesh-init"
PROXY_NAME = "mesh-proxy"
CONFIG_VOLUME = "mesh-config"
RULES_VOLUME = "mesh-rules"
CONFIG_DIR = "/etc/mesh"
RULES_DIR = "/var/run/mesh"
RULES_FILE = f"{RULES_DIR}/rules.json"
PROXY_UID = 1337
# Every port the sidecar listens on or keeps free (DESIGN.md §2): an app on one of them
# would collide with the proxy or have its traffic looped.
PROXY_PORTS = (15000, 15001, 15006, 15020, 15021, 15090)
INJECT_ANNOTATION = "mesh.io/inject"
TRAFFIC_PREFIX = "traffic.mesh.io/"
# Istio's traffic.sidecar.istio.io/* names under our prefix -> the interceptor's env var
# and the interceptor's own parser, so a bad value fails here, not in the pod.
TRAFFIC_ANNOTATIONS: dict[str, tuple[str, Callable[[str, str], tuple[Any, ...]]]] = {
    "includeOutboundIPRanges": ("MESH_INCLUDE_OUTBOUND_CIDRS", capture.parse_include_cidrs),
    "excludeOutboundIPRanges": ("MESH_EXCLUDE_OUTBOUND_CIDRS", capture.parse_cidrs),
    "excludeOutboundPorts": ("MESH_EXCLUDE_OUTBOUND_PORTS", capture.parse_ports),
    "includeInboundPorts": ("MESH_INCLUDE_INBOUND_PORTS", capture.parse_include_ports),
    "excludeInboundPorts": ("MESH_EXCLUDE_INBOUND_PORTS", capture.parse_ports),
}


@dataclass(frozen=True)
class InjectOptions:
    image_init: str = "meshproxy/init:0.1.0"
    image_proxy: str = "meshproxy/proxy:0.1.0"
    config_map: str = "mesh-config"


def inject_pod(pod: PodTemplate, opts: InjectOptions) -> str:
    """Add the mesh to ``pod.spec`` in place; returns what was done, for the summary."""
    wanted = str(pod.annotations.get(INJECT_ANNOTATION, "true")).strip().lower()
    if wanted not in ("true", "false"):
        raise InjectError(
            f"{pod.where}: annotation {INJECT_ANNOTATION}: "
            f"{pod.annotations[INJECT_ANNOTATION]!r} is not true or false"
        )
    init = _containers(pod, "initContainers")
    apps = _containers(pod, "containers")
    if any(c.get("name") == INIT_NAME for c in init + apps):
        return "already injected"
    if wanted == "false":
        return f"skipped ({INJECT_ANNOTATION}: false)"
    if pod.spec.get("hostNetwork") is True:  # iptables there would capture the node's traffic
        return "skipped (hostNetwork)"
    env = _traffic_env(pod)
    _check_conflicts(pod, init + apps)
    pod.spec["initContainers"] = [init_container(opts, env), proxy_container(opts), *init]
    volumes = pod.spec.get("volumes") or []
    pod.spec["volumes"] = [*volumes, *mesh_volumes(opts)]
    reserve_ports(pod)
    return "injected"


RESERVED_PORTS_SYSCTL = "net.ipv4.ip_local_reserved_ports"


def reserve_ports(pod: PodTemplate) -> None:
    """Keep the sidecar's ports out of the pod's ephemeral range with the pod-level
    sysctl (safe in Kubernetes since 1.27), merged with one the pod sets already: the
    init container cannot write /proc/sys unless privileged, and finds them reserved."""
    security = pod.spec.get("securityContext") or {}
    sysctls = list(security.get("sysctls") or [])
    for item in sysctls:
        if item.get("name") == RESERVED_PORTS_SYSCTL:
            theirs = [p.strip() for p in str(item.get("value", "")).split(",") if p.strip()]
            ours = [str(p) for p in PROXY_PORTS if str(p) not in theirs]
            item["value"] = ",".join([*theirs, *ours])
            break
    else:
        ports = ",".join(str(p) for p in PROXY_PORTS)
        sysctls.append({"name": RESERVED_PORTS_SYSCTL, "value": ports})
    pod.spec["securityContext"] = {**security, "sysctls": sysctls}


def _containers(pod: PodTemplate, key: str) -> list[dict[str, Any]]:
    found = pod.spec.get(key) or []
    if not isinstance(found, list) or not all(isinstance(c, dict) for c in found):
        raise InjectError(f"{pod.where}: spec.{key} is not a list of containers")
    return found


def _traffic_env(pod: PodTemplate) -> list[dict[str, str]]:
    env: list[dict[str, str]] = []
    for key, raw in pod.annotations.items():
        if not str(key).startswith(TRAFFIC_PREFIX):
            continue
        known = TRAFFIC_ANNOTATIONS.get(str(key)[len(TRAFFIC_PREFIX) :])
        if known is None:
            names = ", ".join(TRAFFIC_PREFIX + k for k in TRAFFIC_ANNOTATIONS)
            raise InjectError(f"{pod.where}: unknown annotation {key} (known: {names})")
        name, parse = known
        try:
            value = parse(str(raw), f"annotation {key}")
        except capture.UsageError as e:
            raise InjectError(f"{pod.where}: {e}") from None
        env.append({"name": name, "value": ",".join(map(str, value))})
    env.sort(key=lambda e: e["name"])
    try:  # the combination too (an included range inside an excluded one, ...)
        capture.from_args(argparse.Namespace(), {e["name"]: e["value"] for e in env})
    except capture.UsageError as e:
        message = str(e)
        for key, (name, _) in TRAFFIC_ANNOTATIONS.items():
            message = message.replace(name, f"annotation {TRAFFIC_PREFIX}{key}")
        raise InjectError(f"{pod.where}: {message}") from None
    return env


def _check_conflicts(pod: PodTemplate, containers: list[dict[str, Any]]) -> None:
    for c in containers:
        if c.get("name") == PROXY_NAME:
            raise InjectError(f"{pod.where}: a container is already named {PROXY_NAME}")
        for p in c.get("ports") or []:
            port = p.get("containerPort") if isinstance(p, dict) else None
            if port in PROXY_PORTS:
                raise InjectError(
                    f"{pod.where}: container {c.get('name')!r} port {port} is one of the "
                    f"proxy's ports ({', '.join(map(str, PROXY_PORTS))})"
                )
    for v in pod.spec.get("volumes") or []:
        if isinstance(v, dict) and v.get("name") in (CONFIG_VOLUME, RULES_VOLUME):
            raise InjectError(f"{pod.where}: a volume is already named {v['name']}")


def init_container(opts: InjectOptions, traffic_env: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "name": INIT_NAME,
        "image": opts.image_init,
        "env": [
            {"name": "MESH_PROXY_UID", "value": str(PROXY_UID)},
            {"name": "MESH_PROXY_GID", "value": str(PROXY_UID)},
            {"name": "MESH_RULES_FILE", "value": RULES_FILE},
            *traffic_env,
        ],
        "securityContext": {
            "runAsUser": 0,
            "runAsNonRoot": False,
            "allowPrivilegeEscalation": False,
            "capabilities": {
                "drop": ["ALL"],
                "add": ["NET_ADMIN", "NET_RAW", "SETUID", "SETGID"],
            },
        },
        "volumeMounts": [{"name": RULES_VOLUME, "mountPath": RULES_DIR}],
        "resources": {
            "requests": {"cpu": "10m", "memory": "32Mi"},
            "limits": {"cpu": "100m", "memory": "64Mi"},
        },
    }


def _field(path: str) -> dict[str, Any]:
    return {"fieldRef": {"fieldPath": path}}


def _probe(path: str, period: int, **extra: int) -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": 15020}, "periodSeconds": period, **extra}


def proxy_container(opts: InjectOptions) -> dict[str, Any]:
    return {
        "name": PROXY_NAME,
        "image": opts.image_proxy,
        "restartPolicy": "Always",
        "args": ["--config", f"{CONFIG_DIR}/mesh.yaml"],
        "env": [
            {"name": "POD_NAME", "valueFrom": _field("metadata.name")},
            {"name": "POD_NAMESPACE", "valueFrom": _field("metadata.namespace")},
            {"name": "MESH_WORKLOAD_APP", "valueFrom": _field("metadata.labels['app']")},
            {"name": "MESH_WORKLOAD_VERSION", "valueFrom": _field("metadata.labels['version']")},
            {"name": "MESH_RULES_FILE", "value": RULES_FILE},
        ],
        "ports": [{"name": "http-envoy-prom", "containerPort": 15020, "protocol": "TCP"}],
        "readinessProbe": _probe("/healthz/ready", 2),
        "livenessProbe": _probe("/healthz/live", 10),
        "startupProbe": _probe("/healthz/ready", 1, failureThreshold=60),
        "securityContext": {
            "runAsUser": PROXY_UID,
            "runAsGroup": PROXY_UID,
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": CONFIG_VOLUME, "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": RULES_VOLUME, "mountPath": RULES_DIR, "readOnly": True},
        ],
        "resources": {
            "requests": {"cpu": "100m", "memory": "64Mi"},
            "limits": {"cpu": "1", "memory": "256Mi"},
        },
    }


def mesh_volumes(opts: InjectOptions) -> list[dict[str, Any]]:
    return [
        {"name": CONFIG_VOLUME, "configMap": {"name": opts.config_map}},
        # Small and pod-local: the interceptor's copy of the rules it applied.
        {"name": RULES_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
    ]
