"""e2e fixtures: the operator as a real process, releases applied with kubectl, real labelled traffic.

Reusable pieces for every rollout scenario:

- ``operator_process`` (module): ``python -m modelrelease.cli run`` with the
  admin kubeconfig, watching only this module's namespaces (a glob), with
  its own Lease, logs in a file that is attached to every failed test's
  report.  ``.kill()`` / ``.start()`` restart it (SIGKILL scenarios); a test
  module's ``OPERATOR_FLAGS`` adds ``modelrelease run`` flags to its operator.
- ``release_namespace`` (function): a fresh namespace the operator watches,
  with the golden-set ConfigMap in it.
- ``releases`` (function): ``Releases`` bound to that namespace: build and
  apply ModelRelease manifests, read status and events, wait for a phase.
- ``traffic`` (function): ``traffic()`` starts labelled gRPC traffic to the
  release's Service as kube-proxy would spread it, scraped by Prometheus.

The CRD is installed once per session from ``crds/``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Generator, Iterator
from typing import Any

import pytest
from rollout_support import OperatorProcess, Releases

from devstack import scenario
from devstack.testing import Cluster, wait_for


@pytest.fixture(scope="session")
def crd_installed(cluster: Cluster) -> None:
    scenario.install_crd(cluster)


@pytest.fixture(scope="module")
def namespace_prefix() -> str:
    return f"mr-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def operator_process(
    cluster: Cluster,
    crd_installed: None,
    namespace_prefix: str,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> Iterator[OperatorProcess]:
    """The module's operator; a module's ``OPERATOR_FLAGS`` (a tuple) adds ``modelrelease run`` flags."""
    log_path = tmp_path_factory.mktemp("operator") / "operator.log"
    operator = OperatorProcess(
        cluster=cluster,
        namespaces=f"{namespace_prefix}-*",
        log_path=log_path,
        identity=f"e2e-{namespace_prefix}",
        lease_name=f"modelrelease-{namespace_prefix}",
        extra_args=tuple(getattr(request.module, "OPERATOR_FLAGS", ())),
    )
    operator.start()
    try:
        yield operator
    finally:
        operator.stop()
        operator.delete_lease()


_OPERATOR = pytest.StashKey[OperatorProcess]()


@pytest.fixture
def release_namespace(
    cluster: Cluster, operator_process: OperatorProcess, namespace_prefix: str, request: pytest.FixtureRequest
) -> Iterator[str]:
    """A namespace the module's operator watches, holding the golden set."""
    request.node.stash[_OPERATOR] = operator_process
    name = f"{namespace_prefix}-{uuid.uuid4().hex[:5]}"
    cluster.kubectl("create", "namespace", name)
    try:
        wait_for(
            lambda: cluster.kubectl("get", "serviceaccount", "default", "-n", name, check=False).returncode == 0,
            30,
            message=f"default ServiceAccount in {name}",
        )
        scenario.apply_golden_set(cluster, name)
        yield name
    finally:
        cluster.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport]:
    """A failed rollout test shows the operator's log: it says what the operator saw and decided."""
    report: pytest.TestReport = yield
    operator = item.stash.get(_OPERATOR, None)
    if report.failed and operator is not None:
        report.sections.append((f"operator log ({operator.log_path})", operator.log_tail(150)))
    return report


@pytest.fixture
def releases(cluster: Cluster, release_namespace: str) -> Releases:
    return Releases(cluster, release_namespace)


@pytest.fixture
def traffic(cluster: Cluster, release_namespace: str) -> Iterator[Callable[..., Any]]:
    """``with traffic(rate=30) as generator:`` labelled traffic to the release's Service for the block."""

    def start(rate: float = 30.0, duration: float = 300.0, service: str = "digits", model: str = "digits") -> Any:
        """``model``: the TF Serving model name asked for (a release whose spec.model.name is its own)."""
        return scenario.traffic(cluster, release_namespace, rate=rate, duration=duration, service=service, model=model)

    yield start
