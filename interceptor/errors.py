"""Errors the interceptor raises, each carrying the exit code the CLI turns it into.

The CLI is the only place that catches them; everything below raises and lets the
boundary decide. ``UsageError`` (bad flags / env, exit 2) lives in ``options``.
"""

from __future__ import annotations


class InterceptorError(Exception):
    """Base class; ``exit_code`` is what ``mesh-interceptor`` exits with."""

    exit_code = 1


class BackendUnavailable(InterceptorError):
    """The chosen backend cannot run here (tool or library missing): nothing was touched."""

    exit_code = 2


class BackendError(InterceptorError):
    """A restore command or libiptc commit failed; the kernel kept its previous rules."""

    exit_code = 3


class ApplyFailed(InterceptorError):
    """The rules did not end up as planned; what was there before has been put back."""

    exit_code = 3


class ValidationFailed(InterceptorError):
    """Rules are installed but a probe connection was not redirected as it must be."""

    exit_code = 4
