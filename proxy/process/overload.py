"""The worker's overload guard, made from the config and the process's descriptor limit.

The config's ``mesh.overload`` caps are mapped onto the pure guard
(``proxy.policy.overload``); the connection cap is also bounded by ``ulimit -n`` here,
so that a worker refuses connections by count long before ``accept`` or a dial runs
out of descriptors.
"""

from __future__ import annotations

import logging
import resource

from proxy.config.model import Overload as OverloadSettings
from proxy.policy.overload import Overload, OverloadLimits

log = logging.getLogger("proxy.process.overload")


def overload_limits(settings: OverloadSettings) -> OverloadLimits:
    return OverloadLimits(
        max_downstream_connections=settings.max_downstream_connections,
        max_pending_requests=settings.max_pending_requests,
        per_connection_buffer_bytes=settings.per_connection_buffer_bytes,
        max_buffered_bytes=settings.max_buffered_bytes,
    )


def descriptor_limit() -> int | None:
    """The soft ``RLIMIT_NOFILE`` (None when unlimited)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else soft


def worker_overload(settings: OverloadSettings) -> Overload:
    overload = Overload(overload_limits(settings), nofile=descriptor_limit())
    if overload.fd_cap is not None and overload.fd_cap < settings.max_downstream_connections:
        log.info(
            "client connections capped at %d per worker by the descriptor limit "
            "(ulimit -n %s; overload.max_downstream_connections is %d)",
            overload.fd_cap,
            descriptor_limit(),
            settings.max_downstream_connections,
        )
    return overload
