"""Any command line and ``MESH_*`` environment: exit 0 (1 for verify's drift), or exit
2 with one line naming the bad value and no rule, sysctl or file touched.

The fuzzed property (``tests.support.fuzz_interceptor``) with every effect recorded
instead of made; bounded and derandomized here, ``scripts/fuzz --target interceptor``
runs it longer. The case table holds what it found: a port or id of 5,000 digits
(a ValueError traceback from int()), and stray arguments that are empty or blank,
which argparse named by joining them with spaces, so the message showed nothing.
"""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings

from interceptor import cli
from tests.support import fuzz_interceptor
from tests.support.fuzz_interceptor import Effects


@settings(max_examples=300, derandomize=True, deadline=None, database=None)
@given(fuzz_interceptor.inputs())
def test_any_argv_exits_0_or_2_without_changes(argv_env: fuzz_interceptor.Input) -> None:
    assert fuzz_interceptor.verdict(*argv_env) is None


FOUND = [
    (["install", "--outbound-port", "9" * 5000], "--outbound-port: '99999"),
    (["plan", "--proxy-uid=" + "1" * 5000], "--proxy-uid: '11111"),
    (["install", "--exclude-outbound-ports", "80," + "7" * 4400], "--exclude-outbound-ports: "),
    (["install", "--ipv6", "off", "", " "], "unrecognized arguments: '', ' '"),
    (["remove", "\t"], "unrecognized arguments: '\\t'"),
]


@pytest.mark.parametrize(("argv", "needle"), FOUND, ids=[n[:30] for _, n in FOUND])
def test_what_the_fuzzer_found_exits_2_naming_it(argv: list[str], needle: str) -> None:

    effects, out, err = Effects(), io.StringIO(), io.StringIO()
    with effects.installed():
        code = cli.main(argv, {}, out, err)
    assert code == 2 and out.getvalue() == "" and effects.changed() == []
    assert err.getvalue().startswith(f"mesh-interceptor: error: {needle}"), err.getvalue()[:200]
    assert err.getvalue().count("\n") == 1


def test_leading_zeros_still_read_as_the_number() -> None:

    effects, out = Effects(), io.StringIO()
    with effects.installed():
        code = cli.main(["plan", "--outbound-port", "000000015009"], {}, out, io.StringIO())
    assert code == 0 and "--to-ports 15009" in out.getvalue()


def test_an_install_that_succeeds_is_recorded_as_a_change() -> None:

    effects = Effects()
    with effects.installed():
        code = cli.main(["install", "--backend", "legacy"], {}, io.StringIO(), io.StringIO())
    assert code == 0 and any(c.startswith("rules applied") for c in effects.changed())
