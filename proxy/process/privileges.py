"""Dropping root for the proxy's uid/gid (1337) once the listeners are bound.

Supplementary groups go first, then the gid, then the uid (after setuid the process
could no longer change its groups); the result is read back, not assumed. Started
as a non-root user, asking for that same uid/gid is fine and anything else is an error.
"""

from __future__ import annotations

import os

from proxy.core.errors import PrivilegeError


def drop_privileges(uid: int | None, gid: int | None) -> None:
    if uid is None or gid is None:
        return
    if os.geteuid() != 0:
        if (os.geteuid(), os.getegid()) == (uid, gid):
            return
        raise PrivilegeError(
            f"cannot switch to uid {uid} gid {gid}: running as uid {os.geteuid()}, not root"
        )
    try:
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
    except OSError as e:
        raise PrivilegeError(f"cannot switch to uid {uid} gid {gid}: {e.strerror or e}") from e
    if (os.getuid(), os.geteuid(), os.getgid(), os.getegid()) != (uid, uid, gid, gid):
        raise PrivilegeError(f"privilege drop to {uid}:{gid} did not take effect")
