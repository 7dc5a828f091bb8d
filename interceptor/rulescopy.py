"""The copy of the applied rules that ``install --rules-file`` leaves for the proxy.

One JSON document: when, which backend, the options, and each family's restore text
exactly as ``plan`` renders it. It is written to a temporary file in the same
directory and renamed over the old one, so a reader (the proxy's ``GET /rules``,
running as uid 1337) sees the old copy or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import asdict
from datetime import datetime
from typing import Any

from interceptor.errors import InterceptorError
from interceptor.options import Options, UsageError
from interceptor.plan import Plan
from interceptor.render import RESTORE_TOOL, render_restore

MODE = 0o644  # the proxy reads it as 1337; it holds nothing secret


class CopyFailed(InterceptorError):
    """The rules are installed but their copy could not be written (exit 1)."""


def prepare(path: str) -> None:
    """Before anything is installed: the copy's directory exists and we may write there."""
    directory = os.path.dirname(path) or "."
    try:
        os.makedirs(directory, mode=0o755, exist_ok=True)
    except OSError as e:
        raise UsageError(f"--rules-file {path}: cannot create {directory}: {e.strerror}") from e
    if os.path.isdir(path) or not os.access(directory, os.W_OK | os.X_OK):
        raise UsageError(f"--rules-file {path}: not a writable file path")


def rules_copy(plan: Plan, backend: str, opts: Options, now: datetime) -> dict[str, Any]:
    """The document written to the rules file (pure)."""
    return {
        "written_at": now.isoformat(timespec="seconds"),
        "backend": backend,
        "options": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(opts).items()},
        "rules": {
            f"ipv{rs.family}": {"tool": RESTORE_TOOL[rs.family], "restore": render_restore(rs)}
            for rs in plan.rulesets
        },
    }


def write_copy(path: str, document: dict[str, Any]) -> None:
    """Atomically replace ``path`` with ``document`` (temp file + fsync + rename)."""
    directory = os.path.dirname(path) or "."
    try:
        fd, tmp = tempfile.mkstemp(prefix=".rules-", dir=directory)
    except OSError as e:
        raise CopyFailed(f"rules installed, but no copy written to {path}: {e}") from e
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(document, f, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fchmod(f.fileno(), MODE)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise CopyFailed(f"rules installed, but no copy written to {path}: {e}") from e
        raise


def remove_copy(path: str) -> bool:
    """Delete the copy; False when there was none."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True
