"""Failures the mesh layer adds to the HTTP engine's, each with its status and flag.

They subclass ``UpstreamError`` because they happen before any response byte reached
the client, so ``HttpProxy`` answers them itself (DESIGN.md §4).
"""

from __future__ import annotations

from proxy.core.flags import Flag
from proxy.http.errors import UpstreamError


class DeadlineExceededError(UpstreamError):
    """The request deadline passed: no further attempt (504 ``DL``)."""

    status, flag = 504, Flag.DEADLINE_EXCEEDED


class NoHealthyUpstreamError(UpstreamError):
    """The cluster has no endpoint to send to (503 ``UH``)."""

    status, flag = 503, Flag.NO_HEALTHY_UPSTREAM


class RetriedStatus(UpstreamError):
    """A response the retry loop turned down (to try again) before the client saw it."""

    def __init__(self, status_code: int) -> None:
        super().__init__(f"upstream answered {status_code}; trying again")
        self.status_code = status_code
