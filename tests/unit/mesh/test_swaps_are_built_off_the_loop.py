"""A new config's mesh snapshot is built where it was parsed (``Mesh.prepare``, in the
reloader's thread) and only committed on the loop; a snapshot prepared against
clusters that another swap has since replaced is built anew, never swapped in."""

from __future__ import annotations

import asyncio
import gc
import json
import threading
import weakref

from prometheus_client import CollectorRegistry

from proxy.config import MeshConfig, loads_config
from proxy.config.model import Endpoint
from proxy.mesh import Mesh
from proxy.mesh.runtime import Prepared
from proxy.observe.metrics import ReloadMetrics
from proxy.policy import InvalidParameter
from proxy.reload import ConfigStore, Loaded


def text(*ports: int, policy: dict[str, object] | None = None) -> str:
    services = [
        {
            "name": f"svc-{port}",
            "port": 80,
            "addresses": [f"10.96.0.{port - 8000}"],
            "endpoints": [{"address": "10.0.0.1", "port": port}],
            **({"policy": policy} if policy else {}),
        }
        for port in ports
    ]
    return json.dumps({"services": services})


def doc(*ports: int, policy: dict[str, object] | None = None) -> MeshConfig:
    return loads_config(text(*ports, policy=policy), "doc")


def endpoints(mesh: Mesh, name: str) -> list[int]:
    return [e.port for e in mesh.state.clusters[name].endpoints]


def test_prepare_changes_nothing_a_request_sees_and_apply_swaps_what_it_built() -> None:
    first = doc(8001, 8002)
    mesh = Mesh(first)
    before, kept = mesh.state, mesh.state.clusters["svc-8001"]
    second = doc(8001, 8003)
    built = mesh.prepare(second)
    assert mesh.state is before and mesh.config is first  # still routing by the first
    assert set(mesh.state.clusters) == {"svc-8001", "svc-8002"}
    mesh.apply(second)
    assert mesh.state is built  # committed, not built again
    assert mesh.state.clusters["svc-8001"] is kept  # same policy: its state carries over
    assert endpoints(mesh, "svc-8003") == [8003]  # endpoints set at the commit


def test_a_snapshot_prepared_while_another_swap_went_in_is_built_again() -> None:
    mesh = Mesh(doc(8001))
    first_cluster = mesh.state.clusters["svc-8001"]
    second, third = doc(8001, 8002), doc(8001, policy={"load_balancer": "random"})
    build = mesh._build

    def build_while_the_loop_swaps(config: MeshConfig) -> Prepared:
        built = build(config)
        if config is second:  # the parsing thread is still building when the loop
            mesh.apply(third)  # commits another config: svc-8001 gets a new cluster
        return built

    mesh._build = build_while_the_loop_swaps  # type: ignore[method-assign]
    stale = mesh.prepare(second)  # built against the first's clusters
    assert stale.clusters["svc-8001"] is first_cluster  # now dropped by the third
    mesh.apply(second)
    assert mesh.state is not stale and mesh.config is second
    assert mesh.state.clusters["svc-8001"] is not first_cluster  # built against the third's
    assert endpoints(mesh, "svc-8001") == [8001] and endpoints(mesh, "svc-8002") == [8002]


def test_a_prepared_config_is_only_used_for_that_same_config() -> None:
    mesh = Mesh(doc(8001))
    other = mesh.prepare(doc(8002))
    equal = doc(8003)
    mesh.apply(equal)
    assert mesh.state is not other and mesh.config is equal
    assert mesh.prepare(doc(8004)) is not mesh.state  # and never swapped in by itself


def test_the_store_prepares_new_configs_in_its_parsing_thread_and_rejects_what_fails() -> None:
    first = doc(8001)
    mesh = Mesh(first)
    prepared: list[tuple[str, bool]] = []

    def prepare(config: MeshConfig) -> object:
        prepared.append((config.version, threading.current_thread() is threading.main_thread()))
        if len(config.services) == 3:  # as the core refuses a parameter it cannot use
            raise InvalidParameter("timeout: must be >= 0, got -1")
        return mesh.prepare(config)

    in_force = Loaded(first, first.version, "file", 0.0)
    store = ConfigStore(in_force, ReloadMetrics(CollectorRegistry()), prepare=prepare)
    store.subscribe(lambda loaded: mesh.apply(loaded.config))

    async def main() -> None:
        ok = await store.offer_text(text(8001, 8002), "put", "PUT")
        assert ok.result == "ok" and prepared == [(ok.loaded.version, False)]
        assert mesh.state.config is ok.loaded.config
        assert (await store.offer_text(text(8001, 8002), "put", "PUT")).result == "unchanged"
        assert len(prepared) == 1  # nothing new: nothing to build
        bad = await store.offer_text(text(8001, 8002, 8003), "put", "PUT")
        assert bad.result == "rejected"
        assert bad.errors == ("(apply): InvalidParameter: timeout: must be >= 0, got -1",)
        assert mesh.config is ok.loaded.config and store.current is ok.loaded

    asyncio.run(main())


def test_a_dns_answer_landing_while_a_static_config_is_prepared_is_replaced() -> None:
    found = {"hostname": "svc.test", "port": 8001}
    dns = json.loads(text(8001))
    del dns["services"][0]["endpoints"]
    dns["services"][0]["dns"] = found
    mesh = Mesh(loads_config(json.dumps(dns), "dns"))
    cluster = mesh.state.clusters["svc-8001"]
    cluster.set_endpoints([Endpoint("10.0.0.1", 8001)], 0.0)  # a lookup's answer
    static = doc(8001)  # the same service, now with its endpoint written out
    mesh.prepare(static)  # the answer equals the config: nothing to set, it seems
    cluster.set_endpoints([Endpoint("10.9.9.9", 8001)], 0.0)  # the next answer lands
    mesh.apply(static)
    assert mesh.state.clusters["svc-8001"] is cluster  # same policy: kept
    assert endpoints(mesh, "svc-8001") == [8001]
    assert [e.address for e in cluster.endpoints] == ["10.0.0.1"]  # the config's, not DNS's


def test_a_kept_cluster_lets_go_of_the_old_configs_subsets() -> None:
    def with_subset(weight: int) -> MeshConfig:
        data = json.loads(text(8001))
        data["services"][0]["endpoints"][0]["labels"] = {"version": "v1"}
        data["services"][0]["endpoints"][0]["weight"] = 1
        data["services"][0]["subsets"] = {"v1": {"version": "v1"}}
        data["services"][0]["routes"] = [
            {"destinations": [{"subset": "v1", "weight": weight}, {"weight": 100 - weight}]}
        ]
        return loads_config(json.dumps(data), "subset")

    first = with_subset(50)
    mesh = Mesh(first)
    cluster = mesh.state.clusters["svc-8001"]
    subset = first.services[0].subsets["v1"]
    cluster.subset_facts(subset)  # what a request routed to v1 caches
    gone = weakref.ref(subset)
    del subset, first
    mesh.apply(with_subset(60))  # same endpoints, same policy: the cluster is kept
    assert mesh.state.clusters["svc-8001"] is cluster
    gc.collect()
    assert gone() is None
