"""Envoy's response flags: the one enum L4 and L7 report failures with.

Users read these in access logs (``response_flags``) and metric labels exactly as
Envoy writes them, so the values are Envoy's. ``StrEnum``: a flag is its text.
"""

from __future__ import annotations

import enum


class Flag(enum.StrEnum):
    NONE = "-"
    NO_ROUTE = "NR"
    NO_HEALTHY_UPSTREAM = "UH"
    UPSTREAM_CONNECT_FAILURE = "UF"
    UPSTREAM_OVERFLOW = "UO"
    OVERLOAD_MANAGER = "OM"  # refused while the worker is over its buffered-bytes cap
    UPSTREAM_TIMEOUT = "UT"
    DEADLINE_EXCEEDED = "DL"
    UPSTREAM_RESET = "UR"
    DOWNSTREAM_DISCONNECT = "DC"
    DOWNSTREAM_PROTOCOL_ERROR = "DPE"
    STREAM_IDLE_TIMEOUT = "SI"
    DELAY_INJECTED = "DI"  # a route's fault delayed the request
    FAULT_INJECTED = "FI"  # a route's fault aborted the request
