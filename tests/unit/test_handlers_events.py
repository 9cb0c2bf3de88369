"""Which watch events wake a release: changes by people, never the operator's own status writes."""

from __future__ import annotations

from typing import Any

from modelrelease.handlers import wants_a_pass


def _body(generation: int, observed: int | None, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    status = {} if observed is None else {"observedGeneration": observed}
    return {"metadata": {"generation": generation, "annotations": annotations or {}}, "status": status}


def test_initial_listing_resumes_every_release_after_a_restart() -> None:
    assert wants_a_pass(None, _body(3, 3))


def test_created_release_is_acted_on() -> None:
    assert wants_a_pass("ADDED", _body(1, None))


def test_operator_status_write_wakes_nothing() -> None:
    assert not wants_a_pass("MODIFIED", _body(4, 4))


def test_spec_change_wakes_the_release() -> None:
    assert wants_a_pass("MODIFIED", _body(5, 4))


def test_manual_request_wakes_the_release_without_a_spec_change() -> None:
    assert wants_a_pass("MODIFIED", _body(4, 4, {"modelrelease.io/approve": "ab"}))


def test_unrelated_annotation_wakes_nothing() -> None:
    assert not wants_a_pass("MODIFIED", _body(4, 4, {"team": "ml"}))


def test_release_being_deleted_is_left_to_garbage_collection() -> None:
    body = _body(5, 4)
    body["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert not wants_a_pass("MODIFIED", body)
