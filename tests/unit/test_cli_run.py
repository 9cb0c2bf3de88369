"""``modelrelease``: help without a cluster, the run command's flags, usage errors as exit codes."""

from __future__ import annotations

import pytest

from modelrelease import runner
from modelrelease.cli import main
from modelrelease.runner import RunConfig


def test_help_answers_without_a_cluster(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "run" in capsys.readouterr().out


def test_run_documents_the_operator_flags(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--help"]) == 0
    text = capsys.readouterr().out
    for flag in ("--namespace", "--metrics-port", "--log-format", "--prometheus-address", "--kubeconfig"):
        assert flag in text


def test_unknown_log_format_is_a_usage_error() -> None:
    assert main(["run", "--log-format", "xml"]) == 2


def _settings_of(monkeypatch: pytest.MonkeyPatch, *flags: str) -> RunConfig:
    """The RunConfig ``modelrelease run`` builds from ``flags`` (the operator itself is not started)."""
    captured: list[RunConfig] = []

    async def capture(settings: RunConfig) -> None:
        captured.append(settings)

    monkeypatch.setattr(runner, "run", capture)
    assert main(["run", *flags]) == 0
    (settings,) = captured
    return settings


def test_policy_defaults_allow_only_the_operators_prometheus_default_account_and_no_privileged_fields(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    policy = _settings_of(monkeypatch, "--prometheus-address=http://prom:9090").release_policy()
    assert policy.prometheus.describe() == "http://prom:9090"
    assert policy.images == ()
    assert policy.service_accounts == ("default",)
    assert policy.allow_privileged_pods is False


def test_policy_flags_are_repeatable_and_reach_the_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _settings_of(
        monkeypatch,
        "--prometheus-address=http://prom:9090",
        "--allowed-prometheus-address=http://thanos:10902",
        "--allowed-prometheus-address=https://mimir.example/prometheus",
        "--allowed-image=tensorflow/serving:*",
        "--allowed-image=registry.example.com/ml/*",
        "--allowed-service-account=model-runner",
        "--allow-privileged-pods",
    )
    policy = settings.release_policy()
    assert policy.prometheus.allows("http://thanos:10902/")
    assert policy.prometheus.allows("https://mimir.example/prometheus")
    assert policy.prometheus.allows("http://prom:9090")
    assert not policy.prometheus.allows("http://elsewhere:9090")
    assert policy.images == ("tensorflow/serving:*", "registry.example.com/ml/*")
    assert policy.service_accounts == ("default", "model-runner")
    assert policy.allow_privileged_pods is True


def test_run_documents_the_policy_flags(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--help"]) == 0
    text = capsys.readouterr().out
    for flag in (
        "--allowed-prometheus-address",
        "--allowed-image",
        "--allowed-service-account",
        "--allow-privileged-pods",
    ):
        assert flag in text
