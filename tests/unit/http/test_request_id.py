"""Request ids: UUID version-4 shaped, unique in a process and across forked workers."""

from __future__ import annotations

import os
import uuid

from proxy.http.requestid import new_request_id


def test_ids_are_canonical_version_4_uuids() -> None:
    for _ in range(100):
        text = new_request_id()
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


def test_ids_do_not_repeat_within_a_process() -> None:
    ids = {new_request_id() for _ in range(100_000)}
    assert len(ids) == 100_000


def test_a_forked_child_draws_its_own_sequence() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next id and leave without cleanup
        os.write(write, new_request_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    mine = new_request_id()
    uuid.UUID(child)
    # Different random prefixes (74 random bits), not just the next counter value.
    assert child[:23] != mine[:23]
