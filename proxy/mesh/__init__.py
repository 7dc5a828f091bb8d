"""The L7 mesh runtime: live routing state, discovery, the dispatcher, the retry loop.

``Mesh`` holds the routing snapshot built from a ``MeshConfig`` (``apply`` swaps it);
``MeshDispatcher`` routes each HTTP request on it; ``MeshForwarder``, the forwarder
the HTTP engine is handed, runs the attempts; ``MeshTcpRouter`` serves ``tcp``
services from the same clusters.
"""

from __future__ import annotations

from proxy.mesh.cluster import Cluster
from proxy.mesh.discovery import DnsWatcher, Resolver, resolve_dns
from proxy.mesh.dispatch import MeshDispatcher, RequestState
from proxy.mesh.errors import DeadlineExceededError, NoHealthyUpstreamError
from proxy.mesh.forward import ATTEMPT_HEADER, TIMEOUT_HEADER, MeshForwarder
from proxy.mesh.observer import NullObserver, RequestObserver
from proxy.mesh.params import retry_params, service_params
from proxy.mesh.runtime import Mesh
from proxy.mesh.state import MeshState
from proxy.mesh.tcp import MeshTcpRouter

__all__ = [
    "ATTEMPT_HEADER",
    "TIMEOUT_HEADER",
    "Cluster",
    "DeadlineExceededError",
    "DnsWatcher",
    "Mesh",
    "MeshDispatcher",
    "MeshForwarder",
    "MeshState",
    "MeshTcpRouter",
    "NoHealthyUpstreamError",
    "NullObserver",
    "RequestObserver",
    "RequestState",
    "Resolver",
    "resolve_dns",
    "retry_params",
    "service_params",
]
