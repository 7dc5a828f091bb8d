"""Any PUT /config body is applied everywhere, or rejected with the old config still
in force byte for byte (the same objects in the store, mesh and telemetry, the same
/config_dump), through the real admin endpoints and subscribers.

The fuzzed property (``tests.support.fuzz_put``) over the config fuzzer's documents;
bounded and derandomized here, ``scripts/fuzz --target put`` runs it longer. The case
table holds what it found: a weight the loader took and the mesh could not use.
"""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from hypothesis import given, settings

from tests.support import fuzz_config, fuzz_put


@pytest.fixture(autouse=True)
def _quiet(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL, logger="proxy.reload")  # every rejection logs


@settings(max_examples=200, derandomize=True, deadline=None, database=None)
@given(fuzz_config.inputs())
def test_any_put_is_all_or_nothing(body: bytes) -> None:
    assert fuzz_put.verdict(body) is None


def _with_weight(weight: int) -> bytes:
    doc = json.loads(fuzz_put.IN_FORCE)
    doc["services"][0]["endpoints"][0]["weight"] = weight
    return json.dumps(doc).encode()


def test_an_endpoint_weight_past_uint32_is_a_field_error_not_an_apply_failure() -> None:
    async def scenario() -> tuple[int, dict[str, object]]:
        live = fuzz_put.Live.start()
        assert (await live.put(fuzz_put.IN_FORCE.encode()))[0] == 200
        before = live.in_force()
        answer = await live.put(_with_weight(10**400))
        assert live.in_force() == before
        return answer

    status, answer = asyncio.run(scenario())
    assert status == 400
    field = "services[0].endpoints[0].weight"
    assert answer["errors"] == [f"PUT /config: {field}: must be <= 4294967295, got 1{'0' * 400}"]
    assert fuzz_put.verdict(_with_weight(2**32 - 1)) is None  # the largest is taken


def test_an_accepted_put_moves_everything_the_check_compares() -> None:
    async def scenario() -> tuple[tuple[object, ...], tuple[object, ...]]:
        live = fuzz_put.Live.start()
        await live.put(fuzz_put.IN_FORCE.encode())
        before = live.in_force()
        status, _ = await live.put(_with_weight(3))
        assert status == 200
        return before, live.in_force()

    before, after = asyncio.run(scenario())
    assert [a is b for a, b in zip(before, after, strict=True)] == [False, False, False, True, True]
