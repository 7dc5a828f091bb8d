"""Kubernetes Services and EndpointSlices → one meshproxy configuration document.

One meshproxy service per TCP Service port: the ClusterIPs are its addresses, its
hosts are the names the cluster DNS gives it, its endpoints the ready addresses of
the Service's EndpointSlices on the port the slice names for it, labelled with their
Pod's labels (when Pods are in the input), and each ``version`` label becomes a
subset. The protocol follows Istio's port naming: ``appProtocol``, else the name.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from proxy.k8s.objects import EndpointSlice, K8sService, Objects, ServicePort

DEFAULT_SUFFIX = "svc.cluster.local"
_PROTOCOLS = ("http", "tcp")  # what meshproxy handles by name; anything else is sniffed
# Labels that change on every rollout and select nothing a route would name.
_ROLLOUT_LABELS = frozenset(
    {"pod-template-hash", "controller-revision-hash", "pod-template-generation"}
)


@dataclass(frozen=True)
class Generated:
    config: dict[str, Any]
    notes: list[str]  # what was skipped and why (printed to stderr)


def port_protocol(port: ServicePort) -> str:
    """Istio's rule: ``appProtocol`` wins, else the name ``<protocol>[-<suffix>]``."""
    for value in (port.app_protocol.lower(), port.name.lower()):
        for protocol in _PROTOCOLS:
            if value == protocol or value.startswith(protocol + "-"):
                return protocol
        if value:  # appProtocol set but not one we know: do not second-guess it by name
            return "auto"
    return "auto"


def _endpoint_port(slice_: EndpointSlice, port: ServicePort) -> int | None:
    """The slice names the Service port it serves; the number is the resolved targetPort."""
    if port.name in slice_.ports:
        return slice_.ports[port.name]
    if isinstance(port.target_port, int):
        return port.target_port
    if port.target_port is None:
        return port.port
    return None  # a named targetPort the slice does not resolve


def _endpoints(
    service: K8sService, port: ServicePort, objects: Objects, notes: list[str]
) -> list[dict[str, Any]]:
    found: dict[tuple[str, int], dict[str, Any]] = {}
    for slice_ in objects.slices:
        if (slice_.namespace, slice_.service) != (service.namespace, service.name):
            continue
        if slice_.address_type not in ("IPv4", "IPv6"):
            notes.append(
                f"EndpointSlice {slice_.namespace}/{slice_.name}: "
                f"addressType {slice_.address_type} skipped"
            )
            continue
        number = _endpoint_port(slice_, port)
        if number is None:
            notes.append(
                f"EndpointSlice {slice_.namespace}/{slice_.name}: no port named "
                f"{port.name!r} for targetPort {port.target_port!r}"
            )
            continue
        for e in slice_.endpoints:
            if not e.ready:
                continue
            labels = objects.pod_labels.get((service.namespace, e.pod or ""), {})
            for address in e.addresses:
                entry: dict[str, Any] = {"address": address, "port": number}
                kept = {k: v for k, v in sorted(labels.items()) if k not in _ROLLOUT_LABELS}
                if kept:
                    entry["labels"] = kept
                found.setdefault((address, number), entry)
    keys = sorted(
        found, key=lambda k: (ipaddress.ip_address(k[0]).version, ipaddress.ip_address(k[0]), k[1])
    )
    return [found[k] for k in keys]


def _service_name(service: K8sService, port: ServicePort, ports: int) -> str:
    base = f"{service.name}.{service.namespace}"
    return base if ports == 1 else f"{base}.{port.name or port.port}"


def generate(objects: Objects, suffix: str = DEFAULT_SUFFIX) -> Generated:
    notes: list[str] = []
    tcp_ports = {
        (s.namespace, s.name): [p for p in s.ports if p.protocol.upper() == "TCP"]
        for s in objects.services
    }
    # The short name resolves only inside its own namespace: where two namespaces share
    # it on a port, neither gets it (a sidecar's config serves every namespace).
    short = Counter(
        (s.name, p.port) for s in objects.services for p in tcp_ports[(s.namespace, s.name)]
    )
    services: list[dict[str, Any]] = []
    for s in sorted(objects.services, key=lambda s: (s.namespace, s.name)):
        skipped = [p for p in s.ports if p.protocol.upper() != "TCP"]
        for p in skipped:
            notes.append(f"Service {s.namespace}/{s.name}: port {p.port}/{p.protocol} skipped")
        ports = tcp_ports[(s.namespace, s.name)]
        for port in ports:
            hosts = [f"{s.name}.{s.namespace}", f"{s.name}.{s.namespace}.{suffix}"]
            if short[(s.name, port.port)] == 1:
                hosts.insert(0, s.name)
            else:
                notes.append(
                    f"Service {s.namespace}/{s.name}: short host {s.name!r} "
                    f"left out on port {port.port} (other namespaces use it)"
                )
            out: dict[str, Any] = {"name": _service_name(s, port, len(ports)), "port": port.port}
            if s.cluster_ips:
                out["addresses"] = list(s.cluster_ips)
            out["hosts"] = hosts
            out["protocol"] = port_protocol(port)
            if s.type == "ExternalName":
                out["dns"] = {"hostname": s.external_name, "port": port.port}
            else:
                out["endpoints"] = _endpoints(s, port, objects, notes)
                versions = sorted(
                    {
                        e["labels"]["version"]
                        for e in out["endpoints"]
                        if "version" in e.get("labels", {})
                    }
                )
                if versions:
                    out["subsets"] = {v: {"version": v} for v in versions}
            services.append(out)
    return Generated({"services": services}, notes)


def summary(objects: Objects) -> Mapping[str, int]:
    return {
        "services": len(objects.services),
        "endpointslices": len(objects.slices),
        "pods": len(objects.pod_labels),
    }
