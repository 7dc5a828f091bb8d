"""Linux inotify through ctypes: a file descriptor that turns readable when a watched
directory changes, so the config watcher sleeps until there is something to look at.

Directories are watched, not files: a ConfigMap update renames a new ``..data``
symlink into the mount, and a rename-replace swaps the inode under the path; both are
events in the directory. Of each event only the name is read (which entry changed),
so a busy directory's other files can be ignored; the watcher's own ``stat`` decides
what changed. Any failure (no inotify, the per-user watch limit) returns None and the
caller polls instead.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import struct
from collections.abc import Iterable

_HEADER = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len; then name
IN_MODIFY = 0x002
IN_ATTRIB = 0x004
IN_CLOSE_WRITE = 0x008
IN_MOVED_FROM = 0x040
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC
MASK = (
    IN_MODIFY
    | IN_ATTRIB
    | IN_CLOSE_WRITE
    | IN_MOVED_FROM
    | IN_MOVED_TO
    | IN_CREATE
    | IN_DELETE
    | IN_DELETE_SELF
    | IN_MOVE_SELF
)

_libc: ctypes.CDLL | None
try:
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    _libc.inotify_init1.argtypes = [ctypes.c_int]
    _libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
except (OSError, AttributeError):  # not Linux, or a libc without inotify
    _libc = None


class DirWatch:
    """An inotify instance watching some directories; ``fd`` is for ``add_reader``."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.watched: set[str] = set()

    def add(self, directory: str) -> bool:
        """Watch ``directory`` too (again is a no-op); False when it cannot be."""
        if directory in self.watched:
            return True
        assert _libc is not None
        if _libc.inotify_add_watch(self.fd, os.fsencode(directory), MASK) < 0:
            return False
        self.watched.add(directory)
        return True

    def drain(self) -> set[str]:
        """Read the pending events away; the names of the entries they were about
        (an empty name: the directory itself)."""
        names: set[str] = set()
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return names
            if not data:
                return names
            offset = 0
            while offset + _HEADER.size <= len(data):
                _, _, _, length = _HEADER.unpack_from(data, offset)
                start = offset + _HEADER.size
                name = data[start : start + length].rstrip(b"\0")
                names.add(os.fsdecode(name))
                offset = start + length

    def close(self) -> None:
        os.close(self.fd)


def watch_dirs(directories: Iterable[str]) -> DirWatch | None:
    """A watch on every one of ``directories``, or None when that is impossible."""
    if _libc is None:
        return None
    fd = _libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
    if fd < 0:
        return None
    watch = DirWatch(fd)
    for directory in directories:
        if not watch.add(directory):
            watch.close()
            return None
    return watch
