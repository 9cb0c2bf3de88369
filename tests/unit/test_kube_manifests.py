"""The objects a release owns: names, labels, version pinning, owner references."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devstack.modelserver.config import parse_model_server_config
from modelrelease.api.spec import ModelReleaseSpec
from modelrelease.kube.manifests import (
    LABEL_ROLE,
    LABEL_VERSION,
    Owner,
    build_config_map,
    build_deployment,
    build_services,
    model_config_text,
)

OWNER = Owner(name="digits", namespace="ml", uid="uid-1")


def spec(**serving: object) -> ModelReleaseSpec:
    return ModelReleaseSpec.model_validate(
        {
            "model": {"name": "digits", "basePath": "/models/digits", "version": 2},
            "serving": {"image": "tensorflow/serving:2.18.0", "replicas": 3, **serving},
        }
    )


def test_deployment_is_named_after_release_and_version_and_owned_by_the_release() -> None:
    deployment = build_deployment(OWNER, spec(), version=2, role="canary", replicas=1)
    assert deployment["metadata"]["name"] == "digits-v2"
    assert deployment["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert deployment["metadata"]["labels"][LABEL_ROLE] == "canary"


def test_role_is_not_a_pod_label_so_promotion_does_not_restart_pods() -> None:
    canary = build_deployment(OWNER, spec(), version=2, role="canary", replicas=1)
    stable = build_deployment(OWNER, spec(), version=2, role="stable", replicas=3)
    assert canary["spec"]["template"] == stable["spec"]["template"]
    assert LABEL_ROLE not in canary["spec"]["template"]["metadata"]["labels"]


def test_each_version_pins_its_own_model_version_through_the_config_file() -> None:
    config = build_config_map(OWNER, spec(), version=2)
    assert "versions: 2" in config["data"]["models.config"]
    args = build_deployment(OWNER, spec(), version=2, role="canary", replicas=1)["spec"]["template"]["spec"][
        "containers"
    ][0]["args"]
    assert "--model_config_file=/etc/modelrelease/models.config" in args
    assert "--model_name=digits" in args


def test_model_config_pins_specific_version() -> None:
    text = model_config_text("digits", "/models/digits", 7)
    assert 'name: "digits"' in text and "specific" in text and "versions: 7" in text


# What TF Serving's text-format parser must read back verbatim: the API refuses
# most of these in names and paths, the config writer escapes them anyway.
HOSTILE_STRINGS = [
    # Accepted by the API before the fix: the old writer then served a second model, evil, from /tmp/evil.
    '/x"}config{name:"evil"base_path:"/tmp/evil',
    '/models/digits" } config { name: "evil" base_path: "/tmp/evil',
    '/models/digits"\nmodel_version_policy { all {} }',
    "/models\\digits\\",
    "/models/digits\\",
    "/it's/'quoted'",
    "/tab\tnew\nline\rcr\x00nul\x7fdel",
    "/modèles/数字/\u2028",
]


@pytest.mark.parametrize("path", HOSTILE_STRINGS)
def test_model_config_round_trips_any_base_path_through_tf_servings_parser(path: str) -> None:
    (model,) = parse_model_server_config(model_config_text("digits", path, 7))
    assert model.base_path == path
    assert model.name == "digits"
    assert (model.policy.kind, model.policy.versions) == ("specific", (7,))


@pytest.mark.parametrize("name", ['digits" base_path: "/evil', "dig\\its\n"])
def test_model_config_round_trips_the_model_name_too(name: str) -> None:
    (model,) = parse_model_server_config(model_config_text(name, "/models/digits", 3))
    assert (model.name, model.base_path) == (name, "/models/digits")


@given(st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=40), st.integers(1, 10**6))
def test_model_config_is_one_model_with_exactly_the_given_path_for_any_text(path: str, version: int) -> None:
    (model,) = parse_model_server_config(model_config_text("m", path, version))
    assert model.base_path == path
    assert model.policy.versions == (version,)


def test_pod_template_overrides_merge_into_the_pod_spec() -> None:
    release = spec(podTemplate={"nodeSelector": {"pool": "gpu"}, "volumes": [{"name": "x", "emptyDir": {}}]})
    pod = build_deployment(OWNER, release, version=2, role="stable", replicas=3)["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"pool": "gpu"}
    assert [v["name"] for v in pod["volumes"]] == ["modelrelease-config", "x"]


def test_role_services_select_by_version_and_the_main_service_selects_every_version() -> None:
    main, stable, canary = build_services(OWNER, stable=1, candidate=2)
    assert LABEL_VERSION not in main["spec"]["selector"]
    assert stable["spec"]["selector"][LABEL_VERSION] == "1"
    assert canary["spec"]["selector"][LABEL_VERSION] == "2"
    assert [s["metadata"]["name"] for s in (main, stable, canary)] == ["digits", "digits-stable", "digits-canary"]
