"""A big mesh's route plans share what they hold alike: retry parameters made once
per policy, one hold set per distinct set of codes (each is a hundred statuses: one
per route took 170 MiB for 10,000 services)."""

from __future__ import annotations

import json

from proxy.config import loads_config
from proxy.mesh.runtime import Mesh
from proxy.mesh.state import RoutePlan
from tests.support.config_docs import mesh_doc


def _plans(mesh: Mesh) -> list[RoutePlan]:
    return [rp for plan in mesh.state.services.values() for rp in plan.routes.values()]


def test_routes_on_the_same_policy_share_retry_and_all_share_one_hold_set() -> None:
    mesh = Mesh(loads_config(mesh_doc(50), "fifty"))
    plans = _plans(mesh)
    assert len(plans) == 50 * 4
    # Each service's canary route has a policy of its own; the other three routes
    # are on the defaults, one object: 50 + 1 retry parameter sets for 200 routes.
    assert len({id(p.route.resolved_policy) for p in plans}) == 51
    assert len({id(p.retry) for p in plans}) == 51
    # Whatever the attempts, every route retries on the same codes: one hold set.
    assert len({p.retry.status_codes for p in plans}) == 1
    assert len({id(p.hold) for p in plans}) == 1


def test_a_service_with_its_own_policy_gets_its_own_values() -> None:
    doc = json.loads(mesh_doc(3))
    doc["services"][0]["policy"] = {"retries": {"attempts": 4, "retry_on": ["502"]}}
    mesh = Mesh(loads_config(json.dumps(doc), "three"))
    own = mesh.state.services["svc-00000"].default
    other = mesh.state.services["svc-00001"].default
    assert own.retry.attempts == 5 and other.retry.attempts != 5
    assert own.retry is not other.retry
    assert 502 in own.hold and 500 in own.hold
    assert mesh.state.services["svc-00002"].default.retry is other.retry
    assert mesh.state.services["svc-00002"].default.hold is other.hold
