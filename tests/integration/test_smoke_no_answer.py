"""A smoke run that gets no answer (gRPC UNAVAILABLE) is inconclusive, not a failed candidate.

Against devstack's TF-Serving-compatible model server: the same golden set
gives a real accuracy from a live server, and from a pod address where
nothing listens a real UNAVAILABLE, which must come back as
``inconclusive`` (the engine retries it, see test_engine_failures) rather
than as an ``error`` that rolls the candidate back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from reconcile_passes import with_kube

from devstack import scenario
from devstack.testing import Cluster, wait_for
from modelrelease.api.spec import ModelReleaseSpec
from modelrelease.engine import RunSmoke, SmokeResult
from modelrelease.kube.client import Kube
from modelrelease.measure import smoke_test
from modelrelease.observe import VersionPods
from modelrelease.serving import model_status

pytestmark = [pytest.mark.cluster]

SPEC = ModelReleaseSpec.model_validate(
    {
        "model": {"name": "digits", "basePath": "/models/digits", "version": 2},
        "serving": {"image": "tensorflow/serving:2.18.0", "replicas": 1},
    }
)
REQUEST = RunSmoke(version=2, golden_set="digits-golden", min_accuracy=0.9)


@pytest.fixture(scope="module")
def server_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from devstack.models import ensure_models
    from devstack.modelserver.testing import running_server, specific_versions_config

    root = ensure_models()
    directory = tmp_path_factory.mktemp("modelserver")
    config = directory / "models.config"
    config.write_text(specific_versions_config("digits", root / "digits", [2]))
    with running_server([f"--model_config_file={config}"], directory / "server.log") as server:
        target = server.grpc_target

        def available() -> bool:
            return asyncio.run(model_status(target, "digits", 2, timeout=2.0)).available

        wait_for(available, 120, message="v2 AVAILABLE on the model server")
        yield target


def smoke(cluster: Cluster, namespace: str, addresses: tuple[str, ...]) -> SmokeResult:
    """The operator's smoke measurement against pods at ``addresses``, golden set read from ``namespace``."""
    pods = VersionPods(version=2, addresses=addresses, ready_addresses=addresses)

    async def run(kube: Kube) -> SmokeResult:
        return await smoke_test(kube, namespace, SPEC, REQUEST, pods)

    return with_kube(cluster, run)


def test_a_live_server_gives_a_verdict(cluster: Cluster, namespace: str, server_target: str) -> None:
    scenario.apply_golden_set(cluster, namespace)
    result = smoke(cluster, namespace, (server_target,))
    assert result.inconclusive is None and result.error is None
    assert result.count == 200 and result.accuracy >= 0.95


def test_an_address_where_nothing_listens_is_inconclusive_not_a_failure(cluster: Cluster, namespace: str) -> None:
    from devstack.modelserver.testing import free_loopback_endpoint

    scenario.apply_golden_set(cluster, namespace)
    address, port, _ = free_loopback_endpoint()
    result = smoke(cluster, namespace, (f"{address}:{port}",))
    assert result.error is None
    assert result.inconclusive is not None
    assert "UNAVAILABLE" in result.inconclusive
    assert "200/200 golden examples got no answer" in result.inconclusive


def test_no_ready_pod_is_inconclusive(cluster: Cluster, namespace: str) -> None:
    scenario.apply_golden_set(cluster, namespace)
    result = smoke(cluster, namespace, ())
    assert result.error is None and result.inconclusive is not None


def test_a_missing_golden_set_still_fails_the_candidate(cluster: Cluster, namespace: str, server_target: str) -> None:
    result = smoke(cluster, namespace, (server_target,))
    assert result.error is not None and "not found" in result.error
    assert result.inconclusive is None
