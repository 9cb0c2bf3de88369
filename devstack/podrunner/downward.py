"""Downward API values (fieldRef, resourceFieldRef) computed from the pod as the kubelet does."""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any

from devstack.podrunner.kube import JSON

NODE_ALLOCATABLE = {"cpu": "64", "memory": "256Gi", "ephemeral-storage": "500Gi", "pods": "110"}

_SUFFIXES = {
    "": Decimal(1),
    "m": Decimal("0.001"),
    "k": Decimal(1000),
    "M": Decimal(1000) ** 2,
    "G": Decimal(1000) ** 3,
    "T": Decimal(1000) ** 4,
    "P": Decimal(1000) ** 5,
    "E": Decimal(1000) ** 6,
    "Ki": Decimal(1024),
    "Mi": Decimal(1024) ** 2,
    "Gi": Decimal(1024) ** 3,
    "Ti": Decimal(1024) ** 4,
    "Pi": Decimal(1024) ** 5,
    "Ei": Decimal(1024) ** 6,
}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$")


class DownwardError(ValueError):
    pass


def parse_quantity(text: str | int | float) -> Decimal:
    match = _QUANTITY.match(str(text).strip())
    if not match or match.group(2) not in _SUFFIXES:
        raise DownwardError(f"{text!r} is not a resource quantity")
    return Decimal(match.group(1)) * _SUFFIXES[match.group(2)]


def _label_key(path: str, prefix: str) -> str | None:
    match = re.fullmatch(re.escape(prefix) + r"\['(.+)'\]", path)
    return match.group(1) if match else None


def _format_map(values: dict[str, Any]) -> str:
    """``key="value"`` lines, sorted, as the kubelet writes labels/annotations files."""
    return "\n".join(f'{key}="{value}"' for key, value in sorted(values.items()))


def field_value(pod: JSON, field_path: str, pod_ip: str, host_ip: str) -> str:
    meta = pod.get("metadata", {})
    spec = pod.get("spec", {})
    simple = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.hostIP": host_ip,
        "status.hostIPs": host_ip,
        "status.podIP": pod_ip,
        "status.podIPs": pod_ip,
    }
    if field_path in simple:
        return str(simple[field_path])
    if field_path == "metadata.labels":
        return _format_map(meta.get("labels") or {})
    if field_path == "metadata.annotations":
        return _format_map(meta.get("annotations") or {})
    for prefix in ("metadata.labels", "metadata.annotations"):
        key = _label_key(field_path, prefix)
        if key is not None:
            return str((meta.get(prefix.split(".")[1]) or {}).get(key, ""))
    raise DownwardError(f"unsupported fieldRef fieldPath {field_path!r}")


def resource_value(pod: JSON, default_container: str, ref: JSON) -> str:
    """``resourceFieldRef``: the container's limit or request in units of ``divisor``, rounded up.

    An unset limit falls back to the node's allocatable, as on a real node.
    """
    container_name = ref.get("containerName") or default_container
    resource = ref.get("resource", "")
    kind, _, name = resource.partition(".")
    if kind not in ("limits", "requests") or not name:
        raise DownwardError(f"unsupported resourceFieldRef resource {resource!r}")
    containers = [*pod.get("spec", {}).get("containers", []), *pod.get("spec", {}).get("initContainers", [])]
    container = next((c for c in containers if c.get("name") == container_name), None)
    if container is None:
        raise DownwardError(f"resourceFieldRef names container {container_name!r}, which the pod lacks")
    declared = (container.get("resources") or {}).get(kind) or {}
    raw = declared.get(name)
    if raw is None:
        raw = NODE_ALLOCATABLE.get(name, "0") if kind == "limits" else "0"
    divisor = parse_quantity(ref.get("divisor") or "1")
    if divisor == 0:
        raise DownwardError("resourceFieldRef divisor must not be zero")
    return str(math.ceil(parse_quantity(raw) / divisor))
