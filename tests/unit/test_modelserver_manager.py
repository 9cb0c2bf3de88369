"""The version lifecycle with a fake loader: states, load errors, retries, policies, availability preservation."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from devstack.modelserver.config import ModelConfig, VersionPolicy
from devstack.modelserver.manager import AVAILABLE, END, LOADING, ServableManager, versions_on_disk
from devstack.modelserver.metrics import ServingMetrics
from devstack.modelserver.status import Code, ServingError


class FakeServable:
    def __init__(self, name: str, version: int) -> None:
        self.name = name
        self.version = version


class FakeLoader:
    """Loads instantly, fails for chosen versions, and can hold a load open until released."""

    def __init__(self, failing: set[int] | None = None, failures_before_success: int = 0) -> None:
        self.failing = failing or set()
        self.failures_left = failures_before_success
        self.attempts: list[int] = []
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, name: str, version: int, path: Path) -> FakeServable:
        self.attempts.append(version)
        self.gate.wait(timeout=10)
        if version in self.failing:
            raise ServingError(Code.DATA_LOSS, f"Can't parse {path}/saved_model.pb as binary proto")
        if self.failures_left:
            self.failures_left -= 1
            raise ServingError(Code.UNAVAILABLE, "transient")
        return FakeServable(name, version)


def _base(tmp_path: Path, versions: list[int]) -> Path:
    for version in versions:
        (tmp_path / "digits" / str(version)).mkdir(parents=True)
    (tmp_path / "digits" / "not-a-version").mkdir(parents=True)
    return tmp_path / "digits"


def _manager(base: Path, loader: FakeLoader, policy: VersionPolicy | None = None, **options: float) -> ServableManager:
    config = ModelConfig(name="digits", base_path=str(base), policy=policy or VersionPolicy())
    options.setdefault("max_load_retries", 0)
    return ServableManager([config], loader, ServingMetrics(), poll_seconds=0, **options)  # type: ignore[arg-type]


def _states(manager: ServableManager) -> dict[int, str]:
    return {s.version: s.state for s in manager.status("digits")}


def test_only_numeric_directories_are_versions(tmp_path: Path) -> None:
    assert versions_on_disk(_base(tmp_path, [3, 1, 10])) == [1, 3, 10]


def test_latest_policy_loads_the_highest_version_even_past_a_corrupt_one(tmp_path: Path) -> None:
    loader = FakeLoader(failing={4})
    manager = _manager(_base(tmp_path, [1, 2, 4, 5]), loader)
    manager.start()
    try:
        assert manager.wait_until_settled(10)
        assert _states(manager) == {5: AVAILABLE}
        assert manager.servable("digits").version == 5
    finally:
        manager.stop()


def test_a_failed_load_ends_with_the_load_error_and_is_not_retried_forever(tmp_path: Path) -> None:
    loader = FakeLoader(failing={4})
    manager = _manager(_base(tmp_path, [4]), loader, VersionPolicy(kind="specific", versions=(4,)))
    manager.start()
    try:
        assert manager.wait_until_settled(10)
        (state,) = manager.status("digits", 4)
        assert state.state == END
        assert state.error is not None and state.error.code == Code.DATA_LOSS
        manager.poll_once()
        assert loader.attempts == [4]
        with pytest.raises(ServingError, match=r"Servable not found for request: Specific\(digits, 4\)"):
            manager.servable("digits", 4)
    finally:
        manager.stop()


def test_versions_answer_loading_while_the_load_runs(tmp_path: Path) -> None:
    loader = FakeLoader()
    loader.gate.clear()
    manager = _manager(_base(tmp_path, [2]), loader)
    manager.start()
    try:
        assert _states(manager)[2] in ("START", LOADING)
        with pytest.raises(ServingError, match=r"Latest\(digits\)"):
            manager.servable("digits")
        loader.gate.set()
        assert manager.wait_until_settled(10)
        assert _states(manager) == {2: AVAILABLE}
    finally:
        loader.gate.set()
        manager.stop()


def test_retries_recover_from_transient_load_errors(tmp_path: Path) -> None:
    loader = FakeLoader(failures_before_success=2)
    manager = _manager(_base(tmp_path, [1]), loader, max_load_retries=2, retry_interval_seconds=0)
    manager.start()
    try:
        assert manager.wait_until_settled(10)
        assert _states(manager) == {1: AVAILABLE}
        assert loader.attempts == [1, 1, 1]
    finally:
        manager.stop()


def test_new_version_replaces_old_only_once_available(tmp_path: Path) -> None:
    base = _base(tmp_path, [1])
    loader = FakeLoader()
    manager = _manager(base, loader)
    manager.start()
    try:
        assert manager.wait_until_settled(10)
        (base / "2").mkdir()
        manager.poll_once()
        assert manager.wait_until_settled(10)
        manager.poll_once()
        assert _states(manager) == {1: END, 2: AVAILABLE}
        assert manager.status("digits", 1)[0].error is None
    finally:
        manager.stop()


def test_a_broken_new_version_keeps_the_old_one_serving(tmp_path: Path) -> None:
    base = _base(tmp_path, [1])
    loader = FakeLoader(failing={2})
    manager = _manager(base, loader)
    manager.start()
    try:
        assert manager.wait_until_settled(10)
        (base / "2").mkdir()
        manager.poll_once()
        assert manager.wait_until_settled(10)
        manager.poll_once()
        assert _states(manager) == {1: AVAILABLE, 2: END}
        assert manager.servable("digits").version == 1
    finally:
        manager.stop()


def test_unknown_model_and_version_are_not_found_with_tf_serving_messages(tmp_path: Path) -> None:
    manager = _manager(_base(tmp_path, []), FakeLoader())
    with pytest.raises(ServingError, match="Could not find any versions of model digits"):
        manager.status("digits")
    with pytest.raises(ServingError, match="Could not find version 3 of model digits"):
        manager.status("digits", 3)
    with pytest.raises(ServingError, match="Unrecognized servable version label: canary"):
        manager.resolve_label("digits", "canary")


def test_reloading_a_config_without_the_model_unloads_it(tmp_path: Path) -> None:
    manager = _manager(_base(tmp_path, [1]), FakeLoader())
    manager.start()
    try:
        assert manager.wait_until_settled(10)
        manager.reload([])
        assert _states(manager) == {1: END}
        with pytest.raises(ServingError, match=r"Latest\(digits\)"):
            manager.servable("digits")
    finally:
        manager.stop()
