"""Workload identity for metric labels, from the pod's env."""

from __future__ import annotations

import pytest

from proxy.observe.identity import Workload, resolve_workload, workload_from_pod_name


@pytest.mark.parametrize(
    ("pod", "workload"),
    [
        ("reviews-v1-545db77b95-x7k2p", "reviews-v1"),  # Deployment
        ("productpage-v1-6b746f74dc-9stvs", "productpage-v1"),
        ("fluentd-x7k2p", "fluentd"),  # DaemonSet
        ("web-0", "web"),  # StatefulSet
        ("db-12", "db"),
        ("standalone", "standalone"),
        ("my-app-hello", "my-app-hello"),  # "hello" has vowels: not a generated suffix
        ("api-v2-aaaaa", "api-v2-aaaaa"),
    ],
)
def test_pod_name_to_workload(pod: str, workload: str) -> None:
    assert workload_from_pod_name(pod) == workload


@pytest.mark.parametrize(
    ("flag", "env", "expected"),
    [
        ("unknown", {}, Workload("unknown")),
        (
            "unknown",
            {
                "POD_NAME": "reviews-v1-545db77b95-x7k2p",
                "POD_NAMESPACE": "default",
                "MESH_WORKLOAD_APP": "reviews",
                "MESH_WORKLOAD_VERSION": "v1",
            },
            Workload("reviews", "v1", "default", "reviews-v1-545db77b95-x7k2p"),
        ),
        (
            "unknown",
            {"POD_NAME": "ratings-7d9b7c8f6d-w4zq9", "POD_NAMESPACE": "shop"},
            Workload("ratings", "unknown", "shop", "ratings-7d9b7c8f6d-w4zq9"),
        ),
        ("front", {"MESH_WORKLOAD_APP": "reviews"}, Workload("front")),  # the flag wins
        ("unknown", {"MESH_WORKLOAD_APP": "", "POD_NAME": "web-0"}, Workload("web", pod="web-0")),
        # a downward-API value that is not a label value is ignored, not used raw
        ("unknown", {"MESH_WORKLOAD_APP": "bad value/x"}, Workload("unknown")),
    ],
)
def test_resolve_workload(flag: str, env: dict[str, str], expected: Workload) -> None:
    assert resolve_workload(flag, env) == expected


def test_zipkin_service_name_is_app_dot_namespace() -> None:
    assert Workload("reviews", namespace="default").service_name == "reviews.default"
    assert Workload("reviews").service_name == "reviews"
