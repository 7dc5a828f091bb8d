"""Reading ``--config`` for the L4 core: which addresses are ``tcp`` services.

The document is parsed and validated by proxy/config (``load_config``); the L4
core only keeps the version for /config_dump and, for every ``protocol: tcp``
service with static endpoints, the address:port pairs whose connections go to those
endpoints (round robin) instead of the dialled address.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from proxy.config import ConfigError, MeshConfig, load_config
from proxy.errors import UsageError
from proxy.outbound import TcpService


@dataclass(frozen=True)
class LoadedConfig:
    version: str = "none"
    services: Mapping[tuple[str, int], TcpService] = field(default_factory=dict)


def tcp_services(config: MeshConfig) -> dict[tuple[str, int], TcpService]:
    out: dict[tuple[str, int], TcpService] = {}
    for service in config.services:
        if service.protocol != "tcp" or not service.endpoints:
            continue
        endpoints = tuple((e.address, e.port) for e in service.endpoints)
        versions = {e.labels.get("version", "unknown") for e in service.endpoints}
        version = versions.pop() if len(versions) == 1 else "unknown"
        tcp = TcpService(service.name, endpoints, version)
        for address in service.addresses:
            out[(address, service.port)] = tcp
    return out


def load(path: str | None) -> LoadedConfig:
    if path is None:
        return LoadedConfig()
    try:
        config = load_config(path)
    except ConfigError as e:
        raise UsageError(f"--config {path}: " + "; ".join(e.errors)) from e
    return LoadedConfig(config.version[:12], tcp_services(config))
