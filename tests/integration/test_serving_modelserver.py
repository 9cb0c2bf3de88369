"""Model status and the smoke test over real gRPC against devstack's TF-Serving-compatible model server.

One server process serves v2 (good), v3 (bad) and v4 (corrupt: fails to
load) of the digits model, pinned by a model config file as the operator's
Deployments are.  The test process talks to it only through
``modelrelease.serving``, so it never imports TensorFlow itself.
"""

from __future__ import annotations

import asyncio
import importlib.util
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from modelrelease.serving import GoldenSet, ModelLoadState, model_status, run_smoke

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("devstack.modelserver") is None, reason="devstack.modelserver has not landed yet"
)

MODEL = "digits"


def settle(target: str, versions: dict[int, str], timeout: float) -> dict[int, ModelLoadState]:
    """Poll GetModelStatus (the function under test) until each version is in its expected final state."""
    deadline = time.monotonic() + timeout
    seen: dict[int, ModelLoadState] = {}
    while True:
        seen = {v: asyncio.run(model_status(target, MODEL, v, timeout=2.0)) for v in versions}
        if all(seen[v].state == state for v, state in versions.items()):
            return seen
        if time.monotonic() > deadline:
            raise AssertionError(f"versions did not settle within {timeout}s: {seen}")
        time.sleep(0.2)  # poll interval between status calls, not a synchronisation


@pytest.fixture(scope="module")
def server_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from devstack.models import ensure_models
    from devstack.modelserver.testing import running_server, specific_versions_config

    root = ensure_models()
    directory = tmp_path_factory.mktemp("modelserver")
    config = directory / "models.config"
    config.write_text(specific_versions_config(MODEL, root / MODEL, [2, 3, 4]))
    # Like TF Serving, the server retries a failed load 5 times a minute apart unless told otherwise.
    args = [f"--model_config_file={config}", "--max_num_load_retries=0"]
    with running_server(args, directory / "server.log") as server:
        settle(server.grpc_target, {2: "AVAILABLE", 3: "AVAILABLE", 4: "END"}, timeout=120)
        yield server.grpc_target


@pytest.fixture(scope="module")
def golden() -> GoldenSet:
    from devstack.models import GOLDEN_MANIFEST, ensure_models

    manifest = yaml.safe_load((ensure_models() / GOLDEN_MANIFEST).read_text())
    return GoldenSet.from_configmap_data(manifest["data"])


def test_a_loaded_version_is_available_without_error(server_target: str) -> None:
    state = asyncio.run(model_status(server_target, MODEL, 2))
    assert state == ModelLoadState(version=2, state="AVAILABLE", error_code=0, error_message="")
    assert state.available and not state.failed


def test_a_version_that_cannot_load_ends_with_the_servers_error(server_target: str) -> None:
    state = asyncio.run(model_status(server_target, MODEL, 4))
    assert state.state == "END"
    assert state.failed
    assert state.error_code != 0
    assert state.error_message
    assert state.error_message in state.describe()


def test_a_version_the_server_does_not_manage_is_unknown_not_failed(server_target: str) -> None:
    state = asyncio.run(model_status(server_target, MODEL, 9))
    assert state.state == "UNKNOWN"
    assert not state.failed and not state.available


def test_an_unreachable_server_is_unknown_with_the_grpc_code(tmp_path: Path) -> None:
    from devstack.modelserver.testing import free_loopback_endpoint

    address, port, _ = free_loopback_endpoint()
    state = asyncio.run(model_status(f"{address}:{port}", MODEL, 2, timeout=2.0))
    assert state.state == "UNKNOWN"
    assert state.error_code in (4, 14)  # DEADLINE_EXCEEDED or UNAVAILABLE
    assert not state.failed


def test_smoke_accuracy_separates_the_good_version_from_the_bad_one(server_target: str, golden: GoldenSet) -> None:
    good = asyncio.run(run_smoke(server_target, MODEL, 2, golden, batch_size=64))
    bad = asyncio.run(run_smoke(server_target, MODEL, 3, golden, batch_size=64))
    assert good.total == bad.total == len(golden.labels) == 200
    assert good.errors == bad.errors == 0
    assert good.accuracy >= 0.95
    assert bad.accuracy <= 0.7
    assert good.correct == round(good.accuracy * good.total)


def test_smoke_against_a_version_that_failed_to_load_counts_every_instance_as_an_error(
    server_target: str, golden: GoldenSet
) -> None:
    result = asyncio.run(run_smoke(server_target, MODEL, 4, golden))
    assert (result.correct, result.errors, result.accuracy) == (0, 200, 0.0)
    assert result.first_error.startswith("Predict: ")


def test_smoke_with_a_wrong_input_name_reports_the_servers_complaint(server_target: str, golden: GoldenSet) -> None:
    wrong = GoldenSet(MODEL, golden.signature, "not_an_input", golden.instances[:10], golden.labels[:10])
    result = asyncio.run(run_smoke(server_target, MODEL, 2, wrong))
    assert result.errors == 10
    assert "INVALID_ARGUMENT" in result.first_error
