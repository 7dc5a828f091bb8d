"""The running proxy freezes the config in force out of the cyclic collector's way:
at start, and after a PUT of a 1,000-service mesh (GET /stats ``gc``)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.support.admin_client import put_config
from tests.support.config_docs import mesh_doc
from tests.support.netns import netns
from tests.support.proxy_stats import stats
from tests.support.sidecar import start_proxy

pytestmark = pytest.mark.netns


def test_a_1000_service_mesh_put_in_force_is_frozen(tmp_path: Path) -> None:
    with netns("gf") as ns:
        start_proxy(ns, tmp_path)
        at_start = stats(ns.name)["gc"]
        assert at_start["settles"] >= 1  # before the first request

        status, answer = put_config(ns.name, mesh_doc(1000))
        assert status == 200 and answer["result"] == "ok", answer
        deadline = time.monotonic() + 10
        while (now := stats(ns.name)["gc"])["settles"] <= at_start["settles"]:
            assert time.monotonic() < deadline, now
            time.sleep(0.05)
        # 1,000 services are about 100,000 tracked objects: all of them frozen, and the
        # collector left with the little the admin page and the loop are using.
        assert now["frozen"] > at_start["frozen"] + 50_000, (at_start, now)
        assert now["tracked"] < now["frozen"] / 10, now
