"""The chart's output against the real API server: valid for each shape of install, and its RBAC no wider than needed.

``--dry-run=server`` runs the API server's whole admission and validation
without storing anything.  The RBAC checks store the chart's ServiceAccount
and roles for real and ask the API server's own authorizer
(``kubectl auth can-i --as=system:serviceaccount:...``) what the operator
may and may not do.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from devstack import scenario
from devstack.testing import Cluster, fresh_namespace, wait_for

pytestmark = [pytest.mark.cluster]


@pytest.fixture(scope="module", autouse=True)
def crd_installed(cluster: Cluster) -> None:
    """kubectl maps ``modelreleases.modelrelease.io`` through discovery: the CRD must be served."""
    scenario.install_crd(cluster)


@pytest.fixture(scope="module")
def operator_namespace(cluster: Cluster) -> Iterator[str]:
    with fresh_namespace(cluster, "chart-operator") as name:
        yield name


@pytest.fixture(scope="module")
def watched(cluster: Cluster) -> Iterator[str]:
    with fresh_namespace(cluster, "chart-watched") as name:
        yield name


@pytest.fixture(scope="module")
def other(cluster: Cluster) -> Iterator[str]:
    with fresh_namespace(cluster, "chart-other") as name:
        yield name


def _release() -> str:
    return f"mr-{uuid.uuid4().hex[:6]}"


def _render(release: str, namespace: str, values: dict[str, Any], show_only: tuple[str, ...] = ()) -> str:
    import json

    args = [arg for key, value in values.items() for arg in ("--set-json", f"{key}={json.dumps(value)}")]
    only = [arg for path in show_only for arg in ("--show-only", path)]
    from chart_support import CHART, helm

    result = helm("template", release, str(CHART), "--namespace", namespace, *args, *only)
    assert result.returncode == 0, result.stderr
    return result.stdout


MATRIX = {
    "cluster-wide": {},
    "namespaced": {"watchNamespaces": ["WATCHED", "OTHER"]},
    "two-replicas": {"replicas": 2},
    "monitoring-off": {"metrics.service.enabled": False},
    "monitoring-on": {"metrics.service.annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "8080"}},
}


@pytest.mark.parametrize("shape", list(MATRIX))
def test_every_shape_of_install_is_accepted_by_the_api_server(
    cluster: Cluster, operator_namespace: str, watched: str, other: str, shape: str
) -> None:
    values = {
        key: [{"WATCHED": watched, "OTHER": other}.get(v, v) for v in value] if key == "watchNamespaces" else value
        for key, value in MATRIX[shape].items()
    }
    text = _render(_release(), operator_namespace, values)
    result = cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=text, check=False)
    assert result.returncode == 0, result.stderr
    assert "deployment.apps/" in result.stdout and "(server dry run)" in result.stdout


RBAC_FILES = ("templates/serviceaccount.yaml", "templates/rbac.yaml")


def _stored(cluster: Cluster, account: str, namespace: str) -> None:
    """The API server's authorizer reads RBAC from its informers: wait until it has seen the new binding."""
    wait_for(
        lambda: _can(cluster, account, "patch", "modelreleases.modelrelease.io/status", namespace),
        30,
        message=f"{account}'s roles in effect",
    )


Check = tuple[str, str, str | None]
"""(verb, resource, namespace): ``resource`` as kubectl writes it, ``plural.group[/subresource]``."""


def _reviews(cluster: Cluster, account: str, checks: list[Check]) -> dict[Check, bool]:
    """Ask the API server's authorizer about every check at once (one SubjectAccessReview each, one kubectl).

    It is what ``kubectl auth can-i --as`` asks after mapping the resource, and it needs no CRD for a
    group devstack does not serve (Gateway API, Istio).
    """
    account_namespace = account.split(":")[2]
    items = []
    for verb, resource, namespace in checks:
        plural_group, _, subresource = resource.partition("/")
        plural, _, group = plural_group.partition(".")
        attributes = {"verb": verb, "group": group, "resource": plural, "subresource": subresource}
        items.append(
            {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SubjectAccessReview",
                "spec": {
                    "user": account,
                    "groups": ["system:serviceaccounts", f"system:serviceaccounts:{account_namespace}"],
                    "resourceAttributes": {**attributes, "namespace": namespace or ""},
                },
            }
        )
    body = json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
    text = cluster.kubectl("create", "-f", "-", "-o", "json", input=body).stdout
    answers, decoder, at = [], json.JSONDecoder(), 0
    while text[at:].strip():  # kubectl prints one JSON document per object created
        answer, end = decoder.raw_decode(text[at:].lstrip())
        at = len(text) - len(text[at:].lstrip()) + end
        answers.append(answer)
    return {check: bool(a["status"].get("allowed")) for check, a in zip(checks, answers, strict=True)}


def _can(cluster: Cluster, account: str, verb: str, resource: str, namespace: str | None) -> bool:
    """``kubectl auth can-i --as=<account>``, impersonating the operator's ServiceAccount."""
    scope = ["-n", namespace] if namespace else []
    result = cluster.kubectl("auth", "can-i", verb, resource, f"--as={account}", *scope, check=False)
    assert result.stdout.strip() in ("yes", "no"), result.stdout + result.stderr
    return result.stdout.strip() == "yes"


def _stored(cluster: Cluster, account: str, namespace: str) -> None:
    """The API server's authorizer reads RBAC from its informers: wait until it has seen the new binding."""
    wait_for(
        lambda: _can(cluster, account, "patch", "modelreleases.modelrelease.io/status", namespace),
        30,
        message=f"{account}'s roles in effect",
    )


@pytest.fixture
def installed_rbac(cluster: Cluster, operator_namespace: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """The chart's ServiceAccount and roles stored for real; yields the account's user name."""
    values: dict[str, Any] = getattr(request, "param", {})
    release = _release()
    text = _render(release, operator_namespace, values, RBAC_FILES)
    cluster.kubectl("apply", "-f", "-", input=text)
    account = f"system:serviceaccount:{operator_namespace}:{release}-modelrelease"
    try:
        _stored(cluster, account, operator_namespace)
        yield account
    finally:
        cluster.kubectl("delete", "-f", "-", "--ignore-not-found", "--wait=false", input=text, check=False)


ALLOWED_IN_A_WATCHED_NAMESPACE = [
    ("watch", "modelreleases.modelrelease.io"),
    ("patch", "modelreleases.modelrelease.io/status"),
    ("create", "deployments.apps"),
    ("patch", "deployments.apps/scale"),
    ("delete", "configmaps"),
    ("create", "events"),
    ("list", "horizontalpodautoscalers.autoscaling"),
    ("patch", "httproutes.gateway.networking.k8s.io"),
    ("patch", "virtualservices.networking.istio.io"),
]
DENIED_EVERYWHERE = [
    ("get", "secrets"),
    ("list", "secrets"),
    ("create", "pods"),
    ("create", "pods/exec"),
    ("delete", "pods"),
    ("delete", "services"),
    ("delete", "modelreleases.modelrelease.io"),
    ("update", "modelreleases.modelrelease.io"),
    ("create", "modelreleases.modelrelease.io"),
    ("create", "serviceaccounts/token"),
    ("create", "roles.rbac.authorization.k8s.io"),
    ("create", "rolebindings.rbac.authorization.k8s.io"),
    ("delete", "httproutes.gateway.networking.k8s.io"),
    ("create", "persistentvolumeclaims"),
    ("delete", "leases.coordination.k8s.io"),
]
DENIED_CLUSTER_SCOPED = [
    ("list", "nodes"),
    ("create", "namespaces"),
    ("create", "clusterroles.rbac.authorization.k8s.io"),
    ("create", "clusterrolebindings.rbac.authorization.k8s.io"),
    ("update", "customresourcedefinitions.apiextensions.k8s.io"),
    ("create", "mutatingwebhookconfigurations.admissionregistration.k8s.io"),
]


def test_cluster_wide_operator_may_do_its_work_in_any_namespace_and_nothing_more(
    cluster: Cluster, installed_rbac: str, other: str, operator_namespace: str
) -> None:
    account = installed_rbac
    allowed: list[Check] = [(verb, resource, other) for verb, resource in ALLOWED_IN_A_WATCHED_NAMESPACE]
    denied: list[Check] = [(verb, resource, other) for verb, resource in DENIED_EVERYWHERE]
    denied += [(verb, resource, None) for verb, resource in DENIED_CLUSTER_SCOPED]
    denied.append(("update", "leases.coordination.k8s.io", other))
    answers = _reviews(cluster, account, allowed + denied)
    assert [check for check in allowed if not answers[check]] == []
    assert [check for check in denied if answers[check]] == []
    # The same through kubectl's impersonation, as a person would check it.
    assert _can(cluster, account, "create", "deployments.apps", other)
    assert not _can(cluster, account, "get", "secrets", other)
    assert _can(cluster, account, "update", "leases.coordination.k8s.io/modelrelease-operator", operator_namespace)
    assert not _can(cluster, account, "update", "leases.coordination.k8s.io/kube-scheduler", operator_namespace)


@pytest.fixture
def namespaced_rbac(cluster: Cluster, operator_namespace: str, watched: str) -> Iterator[str]:
    release = _release()
    text = _render(release, operator_namespace, {"watchNamespaces": [watched]}, RBAC_FILES)
    cluster.kubectl("apply", "-f", "-", input=text)
    account = f"system:serviceaccount:{operator_namespace}:{release}-modelrelease"
    try:
        _stored(cluster, account, watched)
        yield account
    finally:
        cluster.kubectl("delete", "-f", "-", "--ignore-not-found", "--wait=false", input=text, check=False)


def test_namespaced_operator_cannot_touch_another_namespace(
    cluster: Cluster, namespaced_rbac: str, watched: str, other: str
) -> None:
    account = namespaced_rbac
    allowed: list[Check] = [(verb, resource, watched) for verb, resource in ALLOWED_IN_A_WATCHED_NAMESPACE]
    denied: list[Check] = [(verb, resource, other) for verb, resource in ALLOWED_IN_A_WATCHED_NAMESPACE]
    denied += [(verb, resource, watched) for verb, resource in DENIED_EVERYWHERE]
    # Nothing cluster-wide: not even listing the releases of every namespace.
    denied += [("list", "modelreleases.modelrelease.io", None), ("list", "deployments.apps", None)]
    answers = _reviews(cluster, account, allowed + denied)
    assert [check for check in allowed if not answers[check]] == []
    assert [check for check in denied if answers[check]] == []
    assert _can(cluster, account, "patch", "deployments.apps", watched)
    assert not _can(cluster, account, "patch", "deployments.apps", other)
