"""The shared names: users see them in metrics, /clusters, logs and on the wire.

Cluster names are Istio's, header names the mesh's and the tracing standards'; a
change here is a change users see, so each value is pinned.
"""

from __future__ import annotations

import pytest

from proxy.core import names

CLUSTERS = {
    "PASSTHROUGH_CLUSTER": "PassthroughCluster",
    "INBOUND_PASSTHROUGH_CLUSTER_IPV4": "InboundPassthroughClusterIpv4",
    "INBOUND_PASSTHROUGH_CLUSTER_IPV6": "InboundPassthroughClusterIpv6",
}
HEADERS = {
    "MESH_ATTEMPT": b"x-mesh-attempt",
    "MESH_TIMEOUT_MS": b"x-mesh-timeout-ms",
    "GRPC_TIMEOUT": b"grpc-timeout",
    "REQUEST_ID": b"x-request-id",
    "TRACEPARENT": b"traceparent",
    "TRACESTATE": b"tracestate",
    "B3_TRACE_ID": b"x-b3-traceid",
    "B3_SPAN_ID": b"x-b3-spanid",
    "B3_PARENT_SPAN_ID": b"x-b3-parentspanid",
    "B3_SAMPLED": b"x-b3-sampled",
    "B3_FLAGS": b"x-b3-flags",
    "FORWARDED_CLIENT_CERT": b"x-forwarded-client-cert",
}


@pytest.mark.parametrize(("name", "value"), sorted({**CLUSTERS, **HEADERS}.items()))
def test_each_name_has_its_public_value(name: str, value: str | bytes) -> None:
    assert getattr(names, name) == value


def test_header_names_are_lower_case_bytes_and_nothing_is_missing_or_extra() -> None:
    defined = {n for n in dir(names) if n.isupper()}
    assert defined == {*CLUSTERS, *HEADERS, "INBOUND_PASSTHROUGH_CLUSTERS"}
    for name in HEADERS:
        value = getattr(names, name)
        assert isinstance(value, bytes) and value == value.lower()


def test_inbound_passthrough_clusters_by_family() -> None:
    assert dict(names.INBOUND_PASSTHROUGH_CLUSTERS) == {
        4: "InboundPassthroughClusterIpv4",
        6: "InboundPassthroughClusterIpv6",
    }
