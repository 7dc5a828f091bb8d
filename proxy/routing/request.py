"""The request attributes routing looks at, as the HTTP layer hands them over."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestInfo:
    method: str
    path: str  # without the query string
    query: str  # raw, without the leading '?'
    headers: Mapping[str, str]  # lower-case names; repeated headers joined by ", "
    authority: str | None = None  # Host (HTTP/1) or :authority, possibly with ":port"
