"""A container's environment, built in the kubelet's order with its ``$(VAR)`` rules.

Order matters and is the kubelet's: ``envFrom`` sources first (values taken
literally), then ``env`` entries in order, each value expanded against the
variables defined before it.  ConfigMap and Secret references are read from
the API; a missing one that is not ``optional`` fails the container start
with the kubelet's ``CreateContainerConfigError``.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from devstack.podrunner.downward import field_value, resource_value
from devstack.podrunner.expansion import expand
from devstack.podrunner.kube import JSON

# Reads one ConfigMap or Secret: (kind, namespace, name) -> its data (decoded), or None when it does not exist.
SourceReader = Callable[[str, str, str], Awaitable[dict[str, str] | None]]

_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


class ContainerConfigError(Exception):
    """The kubelet's CreateContainerConfigError: the container cannot be started as specified."""


async def _source(read: SourceReader, kind: str, namespace: str, ref: Mapping[str, Any]) -> dict[str, str] | None:
    name = ref.get("name", "")
    data = await read(kind, namespace, name)
    if data is None and not ref.get("optional"):
        label = "configmap" if kind == "ConfigMap" else "secret"
        raise ContainerConfigError(f'{label} "{name}" not found')
    return data


async def build_env(
    pod: JSON,
    container: JSON,
    *,
    pod_ip: str,
    host_ip: str,
    read: SourceReader,
    base: Mapping[str, str] = {},
) -> dict[str, str]:
    """The variables the container declares, over ``base`` (what every process here gets)."""
    namespace = pod.get("metadata", {}).get("namespace", "default")
    env: dict[str, str] = dict(base)
    for source in container.get("envFrom") or ():
        prefix = source.get("prefix", "")
        if "configMapRef" in source:
            data = await _source(read, "ConfigMap", namespace, source["configMapRef"])
        elif "secretRef" in source:
            data = await _source(read, "Secret", namespace, source["secretRef"])
        else:
            continue
        for key, value in (data or {}).items():
            if _ENV_NAME.match(prefix + key):  # the kubelet skips keys that are not valid variable names
                env[prefix + key] = value
    for var in container.get("env") or ():
        name = var["name"]
        if "valueFrom" not in var:
            env[name] = expand(var.get("value", ""), env)
            continue
        value_from = var["valueFrom"]
        if "fieldRef" in value_from:
            env[name] = field_value(pod, value_from["fieldRef"]["fieldPath"], pod_ip, host_ip)
        elif "resourceFieldRef" in value_from:
            env[name] = resource_value(pod, container["name"], value_from["resourceFieldRef"])
        elif "configMapKeyRef" in value_from or "secretKeyRef" in value_from:
            kind, ref = (
                ("ConfigMap", value_from["configMapKeyRef"])
                if "configMapKeyRef" in value_from
                else ("Secret", value_from["secretKeyRef"])
            )
            data = await _source(read, kind, namespace, ref)
            key = ref.get("key", "")
            if data is not None and key in data:
                env[name] = data[key]
            elif data is not None and not ref.get("optional"):
                label = "configmap" if kind == "ConfigMap" else "secret"
                raise ContainerConfigError(f"couldn't find key {key} in {label} {namespace}/{ref.get('name')}")
    return env


def decode_source(kind: str, obj: JSON) -> dict[str, str]:
    """A ConfigMap's data and binaryData, or a Secret's data, as text."""
    if kind == "Secret":
        return {k: base64.b64decode(v).decode(errors="replace") for k, v in (obj.get("data") or {}).items()}
    data = dict(obj.get("data") or {})
    for key, value in (obj.get("binaryData") or {}).items():
        data[key] = base64.b64decode(value).decode(errors="replace")
    return data
