"""What the handler makes of the cluster: model load over every candidate pod, manual requests."""

from __future__ import annotations

from modelrelease.engine import Request
from modelrelease.observe import aggregate_model_load, read_requests
from modelrelease.serving import ModelLoadState


def test_one_pod_failing_to_load_fails_the_candidate_with_the_server_message() -> None:
    states = [
        ModelLoadState(4, "AVAILABLE"),
        ModelLoadState(4, "END", error_code=15, error_message="Could not load SavedModel: checksum mismatch"),
    ]
    load = aggregate_model_load(4, states, expected=2)

    assert load.state == "FAILED"
    assert "checksum mismatch" in load.message and "DATA_LOSS" in load.message


def test_candidate_is_available_only_when_every_expected_pod_is() -> None:
    assert aggregate_model_load(2, [ModelLoadState(2, "AVAILABLE")], expected=2).state != "AVAILABLE"
    both = [ModelLoadState(2, "AVAILABLE"), ModelLoadState(2, "AVAILABLE")]
    assert aggregate_model_load(2, both, expected=2).state == "AVAILABLE"


def test_no_answering_pod_is_unknown_not_failed() -> None:
    load = aggregate_model_load(2, [ModelLoadState(2, "UNKNOWN", error_code=14, error_message="unavailable")], 1)
    assert load.state == "UNKNOWN"


def test_requests_are_read_from_annotations_and_others_ignored() -> None:
    annotations = {"modelrelease.io/approve": "ab", "modelrelease.io/abort": "", "team": "ml"}
    assert read_requests(annotations) == (Request("approve", "ab"), Request("abort"))
