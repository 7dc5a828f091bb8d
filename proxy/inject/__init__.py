"""``mesh-proxy inject``: add the init container and the native sidecar to Kubernetes YAML."""

from __future__ import annotations

from proxy.inject.cli import inject_main, inject_text
from proxy.inject.documents import TEMPLATE_PATHS, InjectError
from proxy.inject.sidecar import PROXY_PORTS, RULES_FILE, InjectOptions, inject_pod

__all__ = [
    "PROXY_PORTS",
    "RULES_FILE",
    "TEMPLATE_PATHS",
    "InjectError",
    "InjectOptions",
    "inject_main",
    "inject_pod",
    "inject_text",
]
