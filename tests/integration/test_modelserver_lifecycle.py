"""Latest-version policy over a live base path: new versions are picked up, a broken one never takes over.

The server is started the way the pod runner starts it: TF Serving's single-model
flags with a pod path (/models/digits) that DEVSTACK_PATH_MAP maps to a local directory.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tensorflow_serving.apis import get_model_status_pb2

from devstack import models
from devstack.modelserver import testing

STATE = get_model_status_pb2.ModelVersionStatus.State.Name


def _publish(version: int, base: Path) -> None:
    """Copy a version next to the base path and rename it in, as an atomic upload would."""
    staging = base.parent / f"staging-{version}"
    shutil.copytree(models.version_dir(version), staging)
    staging.rename(base / str(version))


def _wait_for(server: testing.RunningServer, expected: dict[int, str], timeout: float = 60) -> dict[int, str]:
    channel = server.channel()
    deadline = time.monotonic() + timeout
    seen: dict[int, str] = {}
    while time.monotonic() < deadline:
        assert server.alive(), server.log_text()[-3000:]
        status = testing.model_status(channel, "digits").model_version_status
        seen = {s.version: STATE(s.state) for s in status}
        if seen == expected:
            return seen
        time.sleep(0.1)  # poll interval
    raise AssertionError(f"expected {expected}, last saw {seen}\n{server.log_text()[-3000:]}")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[testing.RunningServer, Path]]:
    models.ensure_models()
    root = tmp_path_factory.mktemp("modelserver-live")
    base = root / "models" / "digits"
    base.mkdir(parents=True)
    _publish(1, base)
    server = testing.start_server(
        [
            "--model_name=digits",
            "--model_base_path=/models/digits",
            "--file_system_poll_wait_seconds=0.2",
            "--max_num_load_retries=0",
        ],
        root / "server.log",
        env={"DEVSTACK_PATH_MAP": f"/models={root / 'models'}"},
    )
    try:
        yield server, base
    finally:
        server.stop()


def test_latest_policy_follows_the_base_path_and_preserves_availability(
    live: tuple[testing.RunningServer, Path],
) -> None:
    server, base = live
    testing.wait_for_states(server, "digits", [1])
    assert _wait_for(server, {1: "AVAILABLE"})
    ready = httpx.get(f"{server.rest_url}/v1/models/digits", timeout=10)
    assert ready.status_code == 200

    _publish(4, base)  # corrupt: fails to load, and the server keeps serving version 1
    _wait_for(server, {1: "AVAILABLE", 4: "END"})
    assert httpx.get(f"{server.rest_url}/v1/models/digits", timeout=10).status_code == 200
    predict = httpx.post(f"{server.rest_url}/v1/models/digits:predict", json={"instances": [[0.0] * 64]}, timeout=10)
    assert predict.status_code == 200

    _publish(5, base)  # healthy and newer: it takes over and version 1 is unloaded
    _wait_for(server, {1: "END", 4: "END", 5: "AVAILABLE"})
    status = testing.model_status(server.channel(), "digits", 1).model_version_status[0]
    assert status.status.error_code == 0  # unloaded, not failed
    assert "Successfully loaded servable version {name: digits version: 5}" in server.log_text()
