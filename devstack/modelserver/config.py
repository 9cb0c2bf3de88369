"""TF Serving's configuration files: ModelServerConfig and MonitoringConfig text protos.

ModelServerConfig is parsed with the real ``tensorflow_serving.config``
protobufs.  MonitoringConfig's proto is not shipped in tensorflow-serving-api,
so its two messages are declared here from monitoring_config.proto and parsed
with the same ``text_format``: the same syntax and the same parse errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format
from tensorflow_serving.config import model_server_config_pb2

from devstack.modelserver.status import invalid_argument

DEFAULT_PROMETHEUS_PATH = "/monitoring/prometheus/metrics"


@dataclass(frozen=True)
class VersionPolicy:
    """servable_version_policy: ``latest`` (N highest), ``all``, or ``specific`` versions."""

    kind: str = "latest"
    num_versions: int = 1
    versions: tuple[int, ...] = ()

    def aspired(self, on_disk: list[int]) -> list[int]:
        """The versions this policy wants loaded, given the version directories that exist."""
        present = sorted(set(on_disk))
        if self.kind == "all":
            return present
        if self.kind == "specific":
            return [v for v in present if v in self.versions]
        return present[-max(self.num_versions, 1) :] if present else []


@dataclass(frozen=True)
class ModelConfig:
    name: str
    base_path: str
    platform: str = "tensorflow"
    policy: VersionPolicy = VersionPolicy()
    version_labels: dict[str, int] = field(default_factory=dict)


def _policy_from_proto(proto: model_server_config_pb2.ModelConfig) -> VersionPolicy:
    if not proto.HasField("model_version_policy"):
        return VersionPolicy()
    which = proto.model_version_policy.WhichOneof("policy_choice")
    if which == "specific":
        return VersionPolicy(kind="specific", versions=tuple(proto.model_version_policy.specific.versions))
    if which == "all":
        return VersionPolicy(kind="all")
    if which == "latest":
        return VersionPolicy(kind="latest", num_versions=proto.model_version_policy.latest.num_versions or 1)
    return VersionPolicy()


def models_from_proto(config: model_server_config_pb2.ModelServerConfig) -> list[ModelConfig]:
    if config.WhichOneof("config") == "custom_model_config":
        raise invalid_argument("ModelServer does not yet support custom model config.")
    models: list[ModelConfig] = []
    for proto in config.model_config_list.config:
        if not proto.name:
            raise invalid_argument("Model name must be non-empty")
        if not proto.base_path:
            raise invalid_argument(f"Model {proto.name} has no base_path")
        platform = proto.model_platform or "tensorflow"
        if platform != "tensorflow":
            raise invalid_argument(f"Model {proto.name}: unsupported model_platform {platform!r}")
        models.append(
            ModelConfig(
                name=proto.name,
                base_path=proto.base_path,
                platform=platform,
                policy=_policy_from_proto(proto),
                version_labels=dict(proto.version_labels),
            )
        )
    names = [m.name for m in models]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise invalid_argument(f"Illegal to list model {duplicates[0]} multiple times in config list")
    return models


def parse_model_server_config(text: str, source: str = "<string>") -> list[ModelConfig]:
    config = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as error:
        raise invalid_argument(f"Invalid protobuf file: '{source}': {error}") from error
    return models_from_proto(config)


def read_model_server_config(path: Path) -> list[ModelConfig]:
    return parse_model_server_config(path.read_text(), source=str(path))


def single_model_config(name: str, base_path: str) -> list[ModelConfig]:
    """What TF Serving builds from --model_name/--model_base_path: latest version, one model."""
    return [ModelConfig(name=name, base_path=base_path)]


@dataclass(frozen=True)
class PrometheusConfig:
    enable: bool = False
    path: str = DEFAULT_PROMETHEUS_PATH


def _monitoring_message_class() -> type:
    """Declare tensorflow.serving.MonitoringConfig (monitoring_config.proto) in a private pool."""
    proto = descriptor_pb2.FileDescriptorProto(
        name="devstack/tensorflow_serving/config/monitoring_config.proto",
        package="tensorflow.serving",
        syntax="proto3",
    )
    prometheus = proto.message_type.add(name="PrometheusConfig")
    prometheus.field.add(name="enable", number=1, type=8, label=1)  # TYPE_BOOL, LABEL_OPTIONAL
    prometheus.field.add(name="path", number=2, type=9, label=1)  # TYPE_STRING
    monitoring = proto.message_type.add(name="MonitoringConfig")
    monitoring.field.add(
        name="prometheus_config", number=1, type=11, label=1, type_name=".tensorflow.serving.PrometheusConfig"
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    descriptor = pool.FindMessageTypeByName("tensorflow.serving.MonitoringConfig")
    message_class: type = message_factory.GetMessageClass(descriptor)
    return message_class


_MonitoringConfig = _monitoring_message_class()


def parse_monitoring_config(text: str, source: str = "<string>") -> PrometheusConfig:
    message = _MonitoringConfig()
    try:
        text_format.Parse(text, message)
    except text_format.ParseError as error:
        raise invalid_argument(f"Invalid protobuf file: '{source}': {error}") from error
    prometheus = message.prometheus_config
    return PrometheusConfig(enable=bool(prometheus.enable), path=prometheus.path or DEFAULT_PROMETHEUS_PATH)
