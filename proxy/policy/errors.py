"""Errors raised by the policy core.

A parameter that cannot be used (raised when params are built, so a bad value is
caught at config time, never per request); the rest are mistakes by the caller
(releasing what was never acquired, an event out of order), bugs to surface loudly.
"""

from __future__ import annotations


class PolicyError(Exception):
    """Base of every error the policy core raises on purpose."""


class InvalidParameter(PolicyError, ValueError):
    """A policy parameter or name that cannot be used; the message names the value."""


class AccountingError(PolicyError):
    """The caller released or finished something it never acquired or started."""


class SequenceError(PolicyError):
    """A state machine got an event its current phase does not take."""
