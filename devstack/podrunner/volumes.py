"""Pod volumes as local directories, and the mount table that tells each process where they are.

A kubelet mounts volumes into the container's filesystem; here each volume is
a directory under the pod's state directory (hostPath volumes are the host
path itself) and ``DEVSTACK_PATH_MAP`` maps the container's mount paths onto
them (see devstack.paths).  Projected ServiceAccount tokens come from the
TokenRequest API, bound to the pod, exactly as the kubelet asks for them, so
deleting the pod invalidates its token.
"""

from __future__ import annotations

import base64
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from devstack.podrunner.downward import field_value, resource_value
from devstack.podrunner.kube import JSON, ApiError, Kube

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


class VolumeError(Exception):
    """A volume cannot be set up yet (the kubelet's FailedMount): the pod stays ContainerCreating and is retried."""


async def read_object(kube: Kube, kind: str, namespace: str, name: str) -> JSON | None:
    plural = {"ConfigMap": "configmaps", "Secret": "secrets"}[kind]
    try:
        return await kube.get(f"/api/v1/namespaces/{namespace}/{plural}/{name}")
    except ApiError as error:
        if error.status == 404:
            return None
        raise


def _object_files(kind: str, obj: JSON) -> dict[str, bytes]:
    files = {k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()}
    for key, value in (obj.get("data") or {}).items():
        files[key] = base64.b64decode(value) if kind == "Secret" else value.encode()
    return files


def _write(directory: Path, relative: str, content: bytes, mode: int | None) -> None:
    target = directory / relative
    if ".." in Path(relative).parts or (target.is_absolute() and not str(target).startswith(str(directory))):
        raise VolumeError(f"volume item path {relative!r} escapes the volume")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_bytes(content)
    if mode is not None:
        tmp.chmod(mode & 0o777)
    tmp.replace(target)


async def _keyed_source(
    kube: Kube, kind: str, namespace: str, source: Mapping[str, Any], directory: Path, default_mode: int | None
) -> None:
    name = source.get("name") or source.get("secretName") or ""
    obj = await read_object(kube, kind, namespace, name)
    if obj is None:
        if source.get("optional"):
            return
        raise VolumeError(f'{kind.lower()} "{name}" not found')
    files = _object_files(kind, obj)
    items = source.get("items")
    if not items:
        for key, content in files.items():
            _write(directory, key, content, default_mode)
        return
    for item in items:
        if item["key"] not in files:
            if source.get("optional"):
                continue
            raise VolumeError(f"configuration key {item['key']!r} not found in {kind.lower()} {namespace}/{name}")
        _write(directory, item["path"], files[item["key"]], item.get("mode", default_mode))


def _downward_items(pod: JSON, items: list[JSON], directory: Path, pod_ip: str, host_ip: str, mode: int | None) -> None:
    first_container = (pod.get("spec", {}).get("containers") or [{}])[0].get("name", "")
    for item in items:
        if "fieldRef" in item:
            value = field_value(pod, item["fieldRef"]["fieldPath"], pod_ip, host_ip)
        else:
            value = resource_value(pod, first_container, item["resourceFieldRef"])
        _write(directory, item["path"], value.encode(), item.get("mode", mode))


async def request_token(kube: Kube, pod: JSON, source: Mapping[str, Any]) -> tuple[str, str]:
    """A pod-bound ServiceAccount token via TokenRequest; returns (token, expirationTimestamp)."""
    meta = pod["metadata"]
    account = pod.get("spec", {}).get("serviceAccountName") or "default"
    spec: JSON = {
        "expirationSeconds": int(source.get("expirationSeconds") or 3600),
        "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": meta["name"], "uid": meta["uid"]},
    }
    if source.get("audience"):
        spec["audiences"] = [source["audience"]]
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
    try:
        answer = await kube.create(f"/api/v1/namespaces/{meta['namespace']}/serviceaccounts/{account}/token", body)
    except ApiError as error:
        raise VolumeError(f"cannot get a token for serviceaccount {account}: {error}") from error
    return answer["status"]["token"], answer["status"].get("expirationTimestamp", "")


async def materialise(kube: Kube, pod: JSON, volumes_dir: Path, pod_ip: str, host_ip: str) -> dict[str, Path]:
    """Write every volume of the pod; return volume name -> local directory (or file, for a hostPath file)."""
    namespace = pod["metadata"]["namespace"]
    local: dict[str, Path] = {}
    for volume in pod.get("spec", {}).get("volumes") or ():
        name = volume["name"]
        directory = volumes_dir / name
        if "hostPath" in volume:
            host_path = Path(volume["hostPath"]["path"])
            if volume["hostPath"].get("type") in ("DirectoryOrCreate", None, "") and not host_path.exists():
                host_path.mkdir(parents=True, exist_ok=True)
            local[name] = host_path
            continue
        directory.mkdir(parents=True, exist_ok=True)
        local[name] = directory
        if "emptyDir" in volume:
            continue
        if "configMap" in volume:
            source = volume["configMap"]
            await _keyed_source(kube, "ConfigMap", namespace, source, directory, source.get("defaultMode"))
        elif "secret" in volume:
            source = volume["secret"]
            await _keyed_source(kube, "Secret", namespace, source, directory, source.get("defaultMode"))
        elif "downwardAPI" in volume:
            source = volume["downwardAPI"]
            _downward_items(pod, source.get("items") or [], directory, pod_ip, host_ip, source.get("defaultMode"))
        elif "projected" in volume:
            await _projected(kube, pod, volume["projected"], directory, pod_ip, host_ip)
        else:
            kinds = sorted(k for k in volume if k != "name")
            raise VolumeError(f"volume {name!r}: type {kinds} is not supported by the devstack pod runner")
    return local


async def _projected(kube: Kube, pod: JSON, projected: JSON, directory: Path, pod_ip: str, host_ip: str) -> None:
    namespace = pod["metadata"]["namespace"]
    mode = projected.get("defaultMode")
    for source in projected.get("sources") or ():
        if "serviceAccountToken" in source:
            token_source = source["serviceAccountToken"]
            token, _ = await request_token(kube, pod, token_source)
            _write(directory, token_source["path"], token.encode(), 0o600)
        elif "configMap" in source:
            await _keyed_source(kube, "ConfigMap", namespace, source["configMap"], directory, mode)
        elif "secret" in source:
            await _keyed_source(kube, "Secret", namespace, source["secret"], directory, mode)
        elif "downwardAPI" in source:
            _downward_items(pod, source["downwardAPI"].get("items") or [], directory, pod_ip, host_ip, mode)
        else:
            raise VolumeError(f"projected source {sorted(source)} is not supported by the devstack pod runner")


def mount_table(container: JSON, volumes: Mapping[str, Path], fixed: Mapping[str, Path]) -> dict[str, Path]:
    """Container mount path -> local path, for DEVSTACK_PATH_MAP (fixed mounts first, the pod's own win)."""
    table = dict(fixed)
    for mount in container.get("volumeMounts") or ():
        if mount["name"] not in volumes:
            raise VolumeError(f"volumeMount {mount['name']!r} names no volume of the pod")
        local = volumes[mount["name"]]
        if mount.get("subPath"):
            local = local / mount["subPath"]
        table[mount["mountPath"].rstrip("/") or "/"] = local
    return table


def write_kubeconfig(target: Path, server: str, token_dir: Path) -> bool:
    """A kubeconfig from the pod's projected token and CA, so clients authenticate as the pod's ServiceAccount.

    In-cluster clients read ``/var/run/secrets/kubernetes.io/serviceaccount/``,
    which a process here cannot see; they all honour ``KUBECONFIG`` instead.
    Returns False when the pod has no token to build one from.
    """
    token_file, ca_file = token_dir / "token", token_dir / "ca.crt"
    if not token_file.exists():
        return False
    namespace_file = token_dir / "namespace"
    namespace = namespace_file.read_text().strip() if namespace_file.exists() else "default"
    cluster: dict[str, Any] = {"server": server}
    if ca_file.exists():
        cluster["certificate-authority"] = str(ca_file)
    else:
        cluster["insecure-skip-tls-verify"] = True
    import yaml

    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "devstack", "cluster": cluster}],
        "users": [{"name": "pod", "user": {"token": token_file.read_text().strip(), "tokenFile": str(token_file)}}],
        "contexts": [{"name": "pod", "context": {"cluster": "devstack", "user": "pod", "namespace": namespace}}],
        "current-context": "pod",
    }
    tmp = target.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(document))
    tmp.chmod(0o600)
    tmp.replace(target)
    return True


def remove_tree(path: Path) -> None:
    if path.exists():
        shutil.rmtree(path, ignore_errors=True)
