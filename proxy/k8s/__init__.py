"""``mesh-proxy config generate``: a meshproxy config from Kubernetes Services and EndpointSlices.

Import from here: ``read_objects`` (kubectl YAML/JSON → records), ``generate``
(records → config data, pure), ``generate_main`` (the command).
"""

from __future__ import annotations

from proxy.k8s.cli import generate_main
from proxy.k8s.generate import DEFAULT_SUFFIX, Generated, generate, port_protocol
from proxy.k8s.objects import InputError, Objects, read_objects

__all__ = [
    "DEFAULT_SUFFIX",
    "Generated",
    "InputError",
    "Objects",
    "generate",
    "generate_main",
    "port_protocol",
    "read_objects",
]
