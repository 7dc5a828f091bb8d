"""Reading Kubernetes objects out of ``kubectl get ... -o yaml|json`` output.

Input is a ``List`` with ``items``, a multi-document YAML stream, or single objects,
in any mix; only Services, EndpointSlices and Pods are kept (anything else is
skipped). Each kept object becomes a small frozen record holding just the fields
the config generator reads, so the generator works on plain data.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from proxy.core.errors import ProxyError

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class InputError(ProxyError):
    """The input is not Kubernetes YAML/JSON; the message names where."""


@dataclass(frozen=True)
class ServicePort:
    port: int
    name: str = ""
    protocol: str = "TCP"
    app_protocol: str = ""
    target_port: int | str | None = None


@dataclass(frozen=True)
class K8sService:
    name: str
    namespace: str
    cluster_ips: tuple[str, ...]  # empty for headless (clusterIP: None)
    ports: tuple[ServicePort, ...]
    type: str = "ClusterIP"
    external_name: str = ""


@dataclass(frozen=True)
class SliceEndpoint:
    addresses: tuple[str, ...]
    ready: bool
    pod: str | None  # targetRef name when it is a Pod


@dataclass(frozen=True)
class EndpointSlice:
    name: str
    namespace: str
    service: str  # the kubernetes.io/service-name label
    address_type: str
    ports: Mapping[str, int]  # port name ("" when unnamed) -> endpoint port
    endpoints: tuple[SliceEndpoint, ...]


@dataclass(frozen=True)
class Objects:
    services: list[K8sService] = field(default_factory=list)
    slices: list[EndpointSlice] = field(default_factory=list)
    pod_labels: dict[tuple[str, str], Mapping[str, str]] = field(default_factory=dict)


def _items(doc: object) -> Iterator[Mapping[str, Any]]:
    if isinstance(doc, Mapping):
        if doc.get("kind") == "List" or (doc.get("kind", "").endswith("List") and "items" in doc):
            for item in doc.get("items") or []:
                yield from _items(item)
        else:
            yield doc


def _meta(obj: Mapping[str, Any]) -> tuple[str, str, Mapping[str, Any]]:
    meta = obj.get("metadata") or {}
    return str(meta.get("name", "")), str(meta.get("namespace") or "default"), meta


def _service(obj: Mapping[str, Any]) -> K8sService:
    name, namespace, _ = _meta(obj)
    spec = obj.get("spec") or {}
    ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    ports = tuple(
        ServicePort(
            int(p["port"]),
            str(p.get("name") or ""),
            str(p.get("protocol") or "TCP"),
            str(p.get("appProtocol") or ""),
            p.get("targetPort"),
        )
        for p in spec.get("ports") or []
    )
    return K8sService(
        name,
        namespace,
        tuple(str(ip) for ip in ips if ip != "None"),
        ports,
        str(spec.get("type") or "ClusterIP"),
        str(spec.get("externalName") or ""),
    )


def _slice(obj: Mapping[str, Any]) -> EndpointSlice:
    name, namespace, meta = _meta(obj)
    service = str((meta.get("labels") or {}).get("kubernetes.io/service-name", ""))
    ports = {
        str(p.get("name") or ""): int(p["port"]) for p in obj.get("ports") or [] if "port" in p
    }
    endpoints = []
    for e in obj.get("endpoints") or []:
        ref = e.get("targetRef") or {}
        # Kubernetes: a missing ready condition means ready ("unknown state" is ready).
        ready = (e.get("conditions") or {}).get("ready") is not False
        pod = str(ref["name"]) if ref.get("kind") == "Pod" and ref.get("name") else None
        endpoints.append(SliceEndpoint(tuple(str(a) for a in e.get("addresses") or []), ready, pod))
    address_type = str(obj.get("addressType") or "IPv4")
    return EndpointSlice(name, namespace, service, address_type, ports, tuple(endpoints))


def read_objects(text: str, source: str) -> Objects:
    try:
        docs = list(yaml.load_all(text, Loader=_Loader))
    except yaml.YAMLError as e:
        raise InputError(f"{source}: not YAML/JSON: {e}") from e
    out = Objects()
    for doc in docs:
        for obj in _items(doc):
            kind = obj.get("kind")
            try:
                if kind == "Service":
                    out.services.append(_service(obj))
                elif kind == "EndpointSlice":
                    out.slices.append(_slice(obj))
                elif kind == "Pod":
                    name, namespace, meta = _meta(obj)
                    labels = meta.get("labels") or {}
                    out.pod_labels[(namespace, name)] = {str(k): str(v) for k, v in labels.items()}
            except (KeyError, TypeError, ValueError, AttributeError) as e:
                name = _meta(obj)[0] if isinstance(obj.get("metadata"), Mapping) else "?"
                raise InputError(f"{source}: {kind} {name!r}: malformed: {e!r}") from e
    return out
