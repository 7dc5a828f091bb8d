"""The mesh configuration: one YAML/JSON document parsed once into frozen dataclasses.

Import from here: ``load_config``, ``loads_config``, ``parse_config``, ``empty_config``,
``validate_main``, ``ConfigError`` and the model classes.
"""

from __future__ import annotations

from proxy.config.cli import validate_main
from proxy.config.errors import ConfigError
from proxy.config.loading import load_config, loads_config
from proxy.config.model import (
    Destination,
    DnsDiscovery,
    Endpoint,
    MeshConfig,
    MeshSettings,
    Route,
    RouteMatch,
    Service,
    Subset,
    Tracing,
    ValueMatch,
)
from proxy.config.parse import empty_config, parse_config
from proxy.config.policy import (
    LOAD_BALANCERS,
    RETRY_CONDITIONS,
    Backoff,
    CircuitBreaker,
    OutlierDetection,
    Policy,
    PolicyOverride,
    Retries,
    RetryBudgetSettings,
    merge_policy,
)

__all__ = [
    "LOAD_BALANCERS",
    "RETRY_CONDITIONS",
    "Backoff",
    "CircuitBreaker",
    "ConfigError",
    "Destination",
    "DnsDiscovery",
    "Endpoint",
    "MeshConfig",
    "MeshSettings",
    "OutlierDetection",
    "Policy",
    "PolicyOverride",
    "Retries",
    "RetryBudgetSettings",
    "Route",
    "RouteMatch",
    "Service",
    "Subset",
    "Tracing",
    "ValueMatch",
    "empty_config",
    "load_config",
    "loads_config",
    "merge_policy",
    "parse_config",
    "validate_main",
]
