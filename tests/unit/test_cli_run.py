"""``modelrelease``: help without a cluster, the run command's flags, usage errors as exit codes."""

from __future__ import annotations

import pytest

from modelrelease.cli import main


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
