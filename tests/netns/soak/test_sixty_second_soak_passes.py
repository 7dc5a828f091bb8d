"""``scripts/soak`` for 60 s: captured HTTP and TCP through the real sidecar, config
changes every 10 s, no error, no lost byte, no growth after warm-up (the rule is in
``tests.support.soak``). The longer runs are ``./scripts/soak --minutes N``."""

from __future__ import annotations

import io

import pytest

from tests.support import soak
from tests.support.soak_traffic import Rates

pytestmark = [pytest.mark.netns, pytest.mark.slow]


def test_a_sixty_second_soak_passes() -> None:
    out = io.StringIO()
    code = soak.run(60.0, 10.0, Rates(), 1, out)
    text = out.getvalue()
    print(text)
    assert code == 0, text
    rows = [line.split() for line in text.splitlines() if line[:6].strip().isdigit()]
    assert [int(r[0]) for r in rows] == [1, 2, 3, 4, 5, 6]
    # The planned load went through in every period: 90 req/s, 2 streams/s of 64 KiB.
    assert all(int(r[1]) >= 0.8 * 900 and int(r[4]) >= 16 for r in rows), text
    assert [r[-4] for r in rows[:-1]] == ["PUT", "file", "PUT", "file", "PUT"]
    assert "soak: passed:" in text
