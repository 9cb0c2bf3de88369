"""ModelServerConfig / MonitoringConfig text protos and the version policies, as TF Serving reads them."""

from __future__ import annotations

import pytest

from devstack.modelserver import config
from devstack.modelserver.status import Code, ServingError

SPECIFIC = """
model_config_list {
  config {
    name: "digits"
    base_path: "/models/digits"
    model_platform: "tensorflow"
    model_version_policy { specific { versions: 2 versions: 5 } }
    version_labels { key: "stable" value: 2 }
  }
}
"""


def test_specific_policy_and_labels_come_from_the_real_proto() -> None:
    (model,) = config.parse_model_server_config(SPECIFIC)
    assert model.name == "digits"
    assert model.base_path == "/models/digits"
    assert model.policy == config.VersionPolicy(kind="specific", versions=(2, 5))
    assert model.version_labels == {"stable": 2}


def test_config_without_policy_serves_the_latest_version() -> None:
    (model,) = config.parse_model_server_config(
        'model_config_list { config { name: "m" base_path: "/b" model_platform: "tensorflow" } }'
    )
    assert model.policy.kind == "latest"
    assert model.policy.aspired([1, 2, 3, 5]) == [5]


@pytest.mark.parametrize(
    ("policy", "on_disk", "aspired"),
    [
        (config.VersionPolicy(), [1, 2, 4, 5], [5]),
        (config.VersionPolicy(), [], []),
        (config.VersionPolicy(kind="latest", num_versions=2), [3, 1, 2], [2, 3]),
        (config.VersionPolicy(kind="all"), [3, 1], [1, 3]),
        (config.VersionPolicy(kind="specific", versions=(2, 9)), [1, 2, 3], [2]),
    ],
)
def test_policies_choose_versions_from_what_is_on_disk(
    policy: config.VersionPolicy, on_disk: list[int], aspired: list[int]
) -> None:
    assert policy.aspired(on_disk) == aspired


def test_invalid_text_proto_is_invalid_argument_naming_the_file() -> None:
    with pytest.raises(ServingError) as error:
        config.parse_model_server_config("model_config_list { config { nme: 1 } }", source="/etc/cfg")
    assert error.value.code == Code.INVALID_ARGUMENT
    assert error.value.message.startswith("Invalid protobuf file: '/etc/cfg'")


def test_listing_a_model_twice_is_rejected() -> None:
    text = 'model_config_list { config { name: "m" base_path: "/a" } config { name: "m" base_path: "/b" } }'
    with pytest.raises(ServingError, match="Illegal to list model m multiple times"):
        config.parse_model_server_config(text)


def test_monitoring_config_enables_prometheus_at_its_path() -> None:
    parsed = config.parse_monitoring_config('prometheus_config { enable: true, path: "/metrics/x" }')
    assert parsed == config.PrometheusConfig(enable=True, path="/metrics/x")


def test_monitoring_config_defaults_to_tf_serving_path_and_disabled() -> None:
    assert config.parse_monitoring_config("") == config.PrometheusConfig(enable=False)
    assert config.parse_monitoring_config("prometheus_config { enable: true }").path == config.DEFAULT_PROMETHEUS_PATH


def test_monitoring_config_with_unknown_field_is_rejected() -> None:
    with pytest.raises(ServingError) as error:
        config.parse_monitoring_config("prometheus_config { enabled: true }")
    assert error.value.code == Code.INVALID_ARGUMENT
