"""Live configuration: the watched ``--config`` file and ``PUT /config``, swapped in atomically.

Import from here: ``Reloader`` (what the server holds), ``load_initial``,
``ConfigStore``, ``Loaded``, ``OfferResult``, ``ReloadObserver`` (what the store reports
to: ``proxy.observe.metrics.ReloadMetrics``), ``FileWatcher`` and the pure ``decide``.
The module ``gcfreeze`` keeps the config in force out of the cyclic collector's way.
"""

from __future__ import annotations

from proxy.reload.put import PUT_LABEL, PutFanout, put_config_handler
from proxy.reload.reloader import Initial, Reloader, load_initial
from proxy.reload.store import (
    NO_VERSION,
    ConfigStore,
    Loaded,
    OfferResult,
    Rejection,
    ReloadObserver,
)
from proxy.reload.watch import Action, FileWatcher, Fingerprint, decide, fingerprint

__all__ = [
    "NO_VERSION",
    "PUT_LABEL",
    "Action",
    "ConfigStore",
    "FileWatcher",
    "Fingerprint",
    "Initial",
    "Loaded",
    "OfferResult",
    "PutFanout",
    "Rejection",
    "ReloadObserver",
    "Reloader",
    "decide",
    "fingerprint",
    "load_initial",
    "put_config_handler",
]
