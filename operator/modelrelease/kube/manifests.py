"""Pure builders for the objects a ModelRelease owns: Deployments, ConfigMaps, Services.

Why pure: the handlers apply these with server-side apply, and a pure builder
is tested without a cluster and gives the same object for the same input, so
re-applying is a no-op and never restarts pods by accident.

Why the role is not a pod label: pods of a Deployment restart whenever their
template changes, and promotion flips a version's role from canary to stable.
So pods carry only release and version labels; the ``<name>-stable`` and
``<name>-canary`` Services select by version, and the role lives on the
Deployment object, where changing it costs nothing.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

from modelrelease import GROUP, KIND, VERSION
from modelrelease.api.spec import ModelReleaseSpec

Role = Literal["stable", "canary"]
Manifest = dict[str, Any]

GRPC_PORT = 8500
REST_PORT = 8501
METRICS_PATH = "/monitoring/prometheus/metrics"
CONFIG_MOUNT = "/etc/modelrelease"
MANAGED_BY = "modelrelease-operator"

LABEL_NAME = "app.kubernetes.io/name"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_RELEASE = f"{GROUP}/release"
LABEL_VERSION = f"{GROUP}/version"
LABEL_ROLE = f"{GROUP}/role"


class Owner:
    """The ModelRelease that owns an object: enough to write an ownerReference."""

    def __init__(self, name: str, namespace: str, uid: str) -> None:
        self.name = name
        self.namespace = namespace
        self.uid = uid

    def reference(self) -> dict[str, Any]:
        return {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": KIND,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


def deployment_name(release: str, version: int) -> str:
    return f"{release}-v{version}"


def config_map_name(release: str, version: int) -> str:
    return f"{release}-v{version}-config"


def pod_labels(release: str, version: int) -> dict[str, str]:
    return {LABEL_NAME: release, LABEL_RELEASE: release, LABEL_VERSION: str(version)}


def _metadata(owner: Owner, name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": owner.namespace,
        "labels": {**labels, LABEL_MANAGED_BY: MANAGED_BY},
        "ownerReferences": [owner.reference()],
    }


def _text_format_string(value: str) -> str:
    """``value`` as a protobuf text-format string literal, quotes included.

    Backslash and both quotes are escaped, and every control character (C0
    and DEL) becomes an octal escape, so no value can end the string or
    start a new field; other characters are written as they are (the file
    is UTF-8, as TF Serving reads it).  The API already refuses such
    characters in the names and paths written here; this is the second line.
    """
    escaped = []
    for char in value:
        if char in ('"', "'", "\\"):
            escaped.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            escaped.append(f"\\{ord(char):03o}")
        else:
            escaped.append(char)
    return '"' + "".join(escaped) + '"'


def model_config_text(model_name: str, base_path: str, version: int) -> str:
    """TF Serving's ModelServerConfig pinning exactly one version.

    Given only ``--model_base_path``, TF Serving serves the newest version
    directory, so a stable Deployment would silently start serving the
    candidate once its directory appears.  The ``specific`` policy prevents it.
    """
    return (
        "model_config_list {\n"
        "  config {\n"
        f"    name: {_text_format_string(model_name)}\n"
        f"    base_path: {_text_format_string(base_path)}\n"
        '    model_platform: "tensorflow"\n'
        "    model_version_policy {\n"
        "      specific {\n"
        f"        versions: {version}\n"
        "      }\n"
        "    }\n"
        "  }\n"
        "}\n"
    )


MONITORING_CONFIG = f'prometheus_config {{\n  enable: true\n  path: "{METRICS_PATH}"\n}}\n'


def build_config_map(owner: Owner, spec: ModelReleaseSpec, version: int) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(owner, config_map_name(owner.name, version), pod_labels(owner.name, version)),
        "data": {
            "models.config": model_config_text(spec.model.name, spec.model.base_path, version),
            "monitoring.config": MONITORING_CONFIG,
        },
    }


def _merge(base: Any, override: Any) -> Any:
    """Merge a user's podTemplate fragment: maps recursively, lists appended, scalars replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = _merge(base[key], value) if key in base else copy.deepcopy(value)
        return merged
    if isinstance(base, list) and isinstance(override, list):
        return [*base, *copy.deepcopy(override)]
    return copy.deepcopy(override)


def serving_args(spec: ModelReleaseSpec) -> list[str]:
    return [
        f"--port={GRPC_PORT}",
        f"--rest_api_port={REST_PORT}",
        f"--model_name={spec.model.name}",
        f"--model_base_path={spec.model.base_path}",
        f"--model_config_file={CONFIG_MOUNT}/models.config",
        f"--monitoring_config_file={CONFIG_MOUNT}/monitoring.config",
        *spec.serving.args,
    ]


def build_deployment(owner: Owner, spec: ModelReleaseSpec, version: int, role: Role, replicas: int | None) -> Manifest:
    """A version's Deployment; ``replicas`` None leaves them out (a HorizontalPodAutoscaler owns them)."""
    labels = pod_labels(owner.name, version)
    container: dict[str, Any] = {
        "name": "tfserving",
        "image": spec.serving.image,
        "args": serving_args(spec),
        "ports": [
            {"name": "grpc", "containerPort": GRPC_PORT, "protocol": "TCP"},
            {"name": "http", "containerPort": REST_PORT, "protocol": "TCP"},
        ],
        # The REST model-status endpoint answers 200 only once a version is
        # loaded, so a pod is Ready only when its model can serve.
        "readinessProbe": {
            "httpGet": {"path": f"/v1/models/{spec.model.name}", "port": REST_PORT},
            "periodSeconds": 1,
            "failureThreshold": 3,
        },
        "volumeMounts": [{"name": "modelrelease-config", "mountPath": CONFIG_MOUNT, "readOnly": True}],
    }
    if spec.serving.resources:
        container["resources"] = copy.deepcopy(spec.serving.resources)
    pod_spec: dict[str, Any] = {
        "containers": [container],
        "volumes": [
            {"name": "modelrelease-config", "configMap": {"name": config_map_name(owner.name, version)}},
        ],
    }
    pod_spec = _merge(pod_spec, spec.serving.pod_template)
    sized = {} if replicas is None else {"replicas": replicas}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(owner, deployment_name(owner.name, version), {**labels, LABEL_ROLE: role}),
        "spec": {
            **sized,
            "revisionHistoryLimit": 1,
            "selector": {"matchLabels": {LABEL_RELEASE: owner.name, LABEL_VERSION: str(version)}},
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(REST_PORT),
                        "prometheus.io/path": METRICS_PATH,
                    },
                },
                "spec": pod_spec,
            },
        },
    }


def build_service(owner: Owner, name: str, version: int | None) -> Manifest:
    """A Service over every version (``version`` None) or over exactly one version."""
    selector = {LABEL_RELEASE: owner.name}
    if version is not None:
        selector[LABEL_VERSION] = str(version)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(owner, name, {LABEL_NAME: owner.name, LABEL_RELEASE: owner.name}),
        "spec": {
            "selector": selector,
            "ports": [
                # gRPC is HTTP/2 without TLS: a gateway (Traefik, Envoy) reads this to speak h2c to the pods.
                {
                    "name": "grpc",
                    "port": GRPC_PORT,
                    "targetPort": "grpc",
                    "protocol": "TCP",
                    "appProtocol": "kubernetes.io/h2c",
                },
                {"name": "http", "port": REST_PORT, "targetPort": "http", "protocol": "TCP"},
            ],
        },
    }


def build_services(
    owner: Owner, stable: int | None, candidate: int | None, main_version: int | None = None
) -> list[Manifest]:
    """``<name>`` (all versions, or only ``main_version``), ``<name>-stable`` and ``<name>-canary``.

    A role Service with no version to point at selects nothing (a version
    label no pod carries) rather than being deleted, so clients that resolve
    it see an empty endpoint list instead of NXDOMAIN.  ``main_version`` is
    how the replicas router keeps a ready candidate out of user traffic
    before its stage allows any (the smoke test runs on a Ready pod).
    """
    return [
        build_service(owner, owner.name, main_version),
        build_service(owner, f"{owner.name}-stable", stable if stable is not None else 0),
        build_service(owner, f"{owner.name}-canary", candidate if candidate is not None else 0),
    ]
