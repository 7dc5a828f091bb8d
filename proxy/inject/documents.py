"""Kubernetes YAML in and out for ``mesh-proxy inject``: documents and their pod templates.

The input is a multi-document stream whose documents may be ``List``s; each document is
parsed whole first, so a stream that does not parse prints nothing. Where a workload
keeps its pod template depends on its kind (``TEMPLATE_PATHS``); kinds not listed there
carry no pod and pass through as they came.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from proxy.core.errors import ProxyError

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """Never ``&id001`` anchors: every object is written out in full, as kubectl does."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


# kind -> keys from the object to its pod template (``metadata`` + ``spec``); a Pod is
# its own template.
TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": (),
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}


class InjectError(ProxyError):
    """Input that cannot be injected; the message names the document and the bad value."""


@dataclass(frozen=True)
class PodTemplate:
    """One pod template found in the input: where it is, its annotations, and its spec
    (the dict inside the loaded document, edited in place by the injector)."""

    where: str  # "Deployment default/web (document 2)"
    annotations: dict[str, Any]
    spec: dict[str, Any]


def load_documents(text: str, source: str) -> list[Any]:
    """Every document of the stream, in order; empty documents (``---`` alone) dropped."""
    try:
        docs = list(yaml.load_all(text, Loader=_Loader))
    except yaml.YAMLError as e:
        raise InjectError(f"{source}: not valid YAML: {e}") from None
    return [d for d in docs if d is not None]


def dump_documents(docs: list[Any]) -> str:
    return "---\n".join(
        yaml.dump(d, Dumper=_Dumper, sort_keys=False, default_flow_style=False) for d in docs
    )


def _name(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        return "(no name)"
    name = meta.get("name") or meta.get("generateName") or "(no name)"
    return f"{meta['namespace']}/{name}" if meta.get("namespace") else str(name)


def pod_templates(docs: list[Any], source: str) -> Iterator[PodTemplate]:
    """Each pod template in ``docs`` (``List`` items included), in document order."""
    for n, doc in enumerate(docs, 1):
        if not isinstance(doc, dict):
            raise InjectError(f"{source}: document {n} is not a Kubernetes object (a mapping)")
        yield from _templates_of(doc, f"document {n}")


def _templates_of(obj: dict[str, Any], where: str) -> Iterator[PodTemplate]:
    kind = obj.get("kind")
    if not isinstance(kind, str):
        raise InjectError(f"{where}: an object without a kind")
    if kind.endswith("List") and "items" in obj:
        items = obj["items"] or []
        if not isinstance(items, list):
            raise InjectError(f"{kind} ({where}): items is not a list")
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise InjectError(f"{kind} ({where}): items[{i}] is not a Kubernetes object")
            yield from _templates_of(item, f"{where}, items[{i}]")
        return
    path = TEMPLATE_PATHS.get(kind)
    if path is None:
        return  # carries no pod: passes through as it came
    label = f"{kind} {_name(obj)} ({where})"
    node: Any = obj
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    spec = node.get("spec") if isinstance(node, dict) else None
    if not isinstance(spec, dict) or not isinstance(spec.get("containers"), list):
        at = ".".join((*path, "spec", "containers"))
        raise InjectError(f"{label}: no pod template (expected a container list at {at})")
    assert isinstance(node, dict)
    metadata = node.get("metadata") or {}
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    if not isinstance(annotations or {}, dict):
        raise InjectError(f"{label}: metadata.annotations of the pod template is not a mapping")
    yield PodTemplate(label, annotations or {}, spec)
