"""The names the mesh shares with Istio, its users and itself: clusters and headers.

Each is written once here. Cluster names are ``str``: they are metric label values,
access-log fields and /clusters entries. Header names are lower-case ``bytes``, as the
HTTP engine compares and writes them; a module that looks headers up by ``str``
decodes the constant once, at import.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

# Istio's clusters for traffic no configured service claims.
PASSTHROUGH_CLUSTER = "PassthroughCluster"  # outbound, to the original destination
INBOUND_PASSTHROUGH_CLUSTER_IPV4 = "InboundPassthroughClusterIpv4"  # inbound, to the app
INBOUND_PASSTHROUGH_CLUSTER_IPV6 = "InboundPassthroughClusterIpv6"
INBOUND_PASSTHROUGH_CLUSTERS: Mapping[int, str] = MappingProxyType(
    {4: INBOUND_PASSTHROUGH_CLUSTER_IPV4, 6: INBOUND_PASSTHROUGH_CLUSTER_IPV6}
)  # by IP family

# The mesh's own request headers.
MESH_ATTEMPT = b"x-mesh-attempt"  # 1 for the first try, 2 for the first retry, ...
MESH_TIMEOUT_MS = b"x-mesh-timeout-ms"  # the deadline left, in whole milliseconds
GRPC_TIMEOUT = b"grpc-timeout"  # gRPC's own deadline header, read like the one above
REQUEST_ID = b"x-request-id"  # kept when the client sent one, else made up

# Trace context: W3C first, then Zipkin's B3 multi-header form.
TRACEPARENT: bytes = b"traceparent"
TRACESTATE: bytes = b"tracestate"
B3_TRACE_ID: bytes = b"x-b3-traceid"
B3_SPAN_ID: bytes = b"x-b3-spanid"
B3_PARENT_SPAN_ID: bytes = b"x-b3-parentspanid"
B3_SAMPLED: bytes = b"x-b3-sampled"
B3_FLAGS: bytes = b"x-b3-flags"

# The caller's identity, set by the sidecar that terminated mTLS (Envoy's XFCC).
FORWARDED_CLIENT_CERT = b"x-forwarded-client-cert"
