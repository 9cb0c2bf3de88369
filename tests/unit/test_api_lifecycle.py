"""The lifecycle fields (bake, webhooks, lineage) refused as a user meets them: the field named, the limit said."""

from __future__ import annotations

from typing import Any

from test_api_validation import only_problem, spec


def model(**fields: Any) -> dict[str, Any]:
    return {"model": {"name": "digits", "basePath": "/models/digits", "version": 2, **fields}}


def test_lineage_metadata_within_the_limits_is_kept() -> None:
    lineage = {"training-run": "mlflow/run-42", "dataset": "s3://bucket/digits@2026-01-01", "registry.uri": "x" * 256}
    assert spec(**model(metadata=lineage)).model.metadata == lineage


def test_a_metadata_value_over_256_characters_is_refused_naming_the_key() -> None:
    found = only_problem(**model(metadata={"report": "x" * 257}))
    assert found.startswith("spec.model.metadata.report"), found
    assert "256" in found


def test_more_than_eight_metadata_entries_are_refused() -> None:
    found = only_problem(**model(metadata={f"k{i}": "v" for i in range(9)}))
    assert found.startswith("spec.model.metadata"), found
    assert "8" in found


def test_a_metadata_key_that_is_not_a_plain_name_is_refused() -> None:
    found = only_problem(**model(metadata={"bad key!": "v"}))
    assert found.startswith("spec.model.metadata['bad key!']"), found


def test_bake_time_needs_automatic_rollback() -> None:
    found = only_problem(rollback={"automatic": False, "bakeTime": "5m"})
    assert found.startswith("spec.rollback.bakeTime needs automatic: true"), found


def test_bake_time_and_scale_down_delay_are_durations() -> None:
    parsed = spec(rollback={"bakeTime": "5m", "scaleDownDelay": "10m"})
    assert (parsed.rollback.bake_time, parsed.rollback.scale_down_delay) == ("5m", "10m")
    assert only_problem(rollback={"bakeTime": "soon"}).startswith("spec.rollback.bakeTime")


def test_webhooks_take_a_url_a_timeout_and_retries() -> None:
    hook = {"url": "http://hooks.example/pre", "timeout": "2s", "retries": 3}
    parsed = spec(webhooks={"preRollout": hook, "onRollback": {"url": "https://pager.example/page"}})
    assert parsed.webhooks.pre_rollout is not None and parsed.webhooks.pre_rollout.retries == 3
    assert parsed.webhooks.on_rollback is not None and parsed.webhooks.on_rollback.timeout == "10s"
    assert only_problem(webhooks={"postRollout": {"url": "ftp://x"}}).startswith("spec.webhooks.postRollout.url")
    assert only_problem(webhooks={"postRollout": {**hook, "retries": 11}}).startswith(
        "spec.webhooks.postRollout.retries"
    )
