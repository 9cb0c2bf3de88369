"""The ``modelrelease`` CLI on real rollouts: every command's output, ``watch`` on a real TTY and piped, exit codes.

One scenario covers every command, to stay inside the test-time budget:
v1 stable; v2 rolled out through canary (paused and resumed by request),
an approval stage (approved from the CLI) and full, watched the whole way
under tmux (a real terminal, read back with ``capture-pane``) and piped
(plain lines); then v3 aborted (``watch`` exits 1), retried and promoted.
Requests the phase makes no sense for are refused with exit code 1, and no
command ever changes the release's ``metadata.generation`` (spec untouched).

Stable runs one replica, so every weight is served by one candidate pod (50%).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from rollout_support import ACCURACY_RATIO, Releases

from devstack.testing import Cluster, wait_for
from modelrelease.cli import main

pytestmark = [pytest.mark.e2e, pytest.mark.cluster, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]
SMOKE = {"name": "smoke", "smoke": {"goldenSet": {"configMap": "digits-golden"}, "minAccuracy": 0.3}}
STAGES = [
    SMOKE,
    {"name": "canary", "weight": 50, "duration": "4s"},
    {"name": "ab", "weight": 50, "approval": True},
    {"name": "full", "weight": 100},
]
METRICS = [{"name": "accuracy", "ratio": ACCURACY_RATIO, "min": 0.3}]


def _env(cluster: Cluster) -> dict[str, str]:
    """KUBECONFIG as a user sets it, and this checkout's code first (the shared venv may point elsewhere)."""
    path = os.pathsep.join([str(REPO / "operator"), str(REPO)])
    return {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "PYTHONPATH": path, "NO_COLOR": "1"}


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "modelrelease.cli", *args]


class Cli:
    """The one-shot commands, run in this process through the entry point's ``main`` (a process each would
    cost seconds of imports on a loaded machine); ``watch`` runs as real processes below."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace

    def __call__(self, *args: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main([*args, "-n", self.namespace])
        return code, out.getvalue(), err.getvalue()

    def ok(self, *args: str) -> str:
        code, out, err = self(*args)
        assert code == 0, f"modelrelease {' '.join(args)}: exit {code}: {err}"
        return out

    def refused(self, *args: str) -> str:
        code, out, err = self(*args)
        assert code == 1, f"modelrelease {' '.join(args)} was not refused: {out}"
        return err


class Tmux:
    """``modelrelease watch`` in a detached tmux session on a private server: a real TTY."""

    def __init__(self, env: dict[str, str], args: list[str], exit_file: Path) -> None:
        binary = shutil.which("tmux")
        assert binary is not None, "tmux is missing: `make setup` installs it"
        self.binary = binary
        self.socket = f"mr-cli-{uuid.uuid4().hex[:6]}"
        shell = f"{' '.join(args)}; echo $? > {exit_file}; sleep 600"
        tty_env = {key: value for key, value in env.items() if key != "NO_COLOR"}  # colour on the TTY
        subprocess.run(
            [binary, "-L", self.socket, "new-session", "-d", "-s", "watch", "-x", "150", "-y", "70", shell],
            env={**tty_env, "TERM": "xterm-256color"},
            check=True,
        )

    def screen(self) -> str:
        result = subprocess.run(
            [self.binary, "-L", self.socket, "capture-pane", "-p", "-t", "watch"], capture_output=True, text=True
        )
        return result.stdout

    def close(self) -> None:
        subprocess.run([self.binary, "-L", self.socket, "kill-server"], capture_output=True)


@pytest.fixture
def cli(cluster: Cluster, releases: Releases, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig))
    return Cli(releases.namespace)


def _one_replica(manifest: dict[str, Any]) -> dict[str, Any]:
    manifest["spec"]["serving"]["replicas"] = 1
    return manifest


@pytest.fixture
def watchers(cluster: Cluster, releases: Releases, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Start both watches of the release: under tmux and piped."""
    started: dict[str, Any] = {}

    def start(key: str) -> None:
        args = _command("watch", releases.name, "-n", releases.namespace)
        if key.startswith("tmux"):
            started[key] = Tmux(_env(cluster), args, tmp_path / f"{key}.exit")
        else:
            started[key] = subprocess.Popen(
                args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(cluster)
            )

    started["start"] = start
    try:
        yield started
    finally:
        for _key, value in started.items():
            if isinstance(value, Tmux):
                value.close()
            elif isinstance(value, subprocess.Popen) and value.poll() is None:
                value.kill()
                value.wait()


def _showing(tmux: Tmux, words: str) -> str | None:
    screen = tmux.screen()
    return screen if words in screen else None


def _generation(releases: Releases) -> int:
    return int(releases.get()["metadata"]["generation"])


def _no_requests_left(releases: Releases) -> bool:
    annotations = releases.get()["metadata"].get("annotations") or {}
    return not any(key.startswith("modelrelease.io/") for key in annotations)


def test_cli_drives_and_shows_a_rollout_from_start_to_promotion_and_an_abort(
    cluster: Cluster, releases: Releases, cli: Cli, traffic: Any, watchers: dict[str, Any], tmp_path: Path
) -> None:
    name = releases.name
    releases.apply(_one_replica(releases.manifest(1)))
    releases.wait_phase("Succeeded", 90, also=lambda s: s.get("stableVersion") == 1)
    assert "nothing to retry" in cli.refused("retry", name)
    assert "no rollout in progress" in cli.refused("pause", name)

    with traffic(rate=30):
        releases.apply(_one_replica(releases.manifest(2, stages=STAGES, metrics=METRICS, minChecks=1)))
        generation = _generation(releases)
        watchers["start"]("tmux")
        watchers["start"]("piped")
        releases.wait_phase("Progressing", 60, also=lambda s: (s.get("stage") or {}).get("name") == "canary")

        # pause and resume are requests: consumed, recorded, spec untouched
        assert "pause requested" in cli.ok("pause", name)
        paused = releases.wait_phase("Paused", 30, also=lambda s: s.get("pausedByRequest") is True)
        assert paused["stage"]["name"] in ("canary", "ab")  # the canary's 4s may have passed meanwhile
        wait_for(lambda: _no_requests_left(releases), 30, message="the pause annotation consumed")
        assert "already paused by request" in cli.refused("pause", name)
        text = cli.ok("status", name)
        assert "Paused" in text and "pause request (modelrelease resume)" in text
        assert "resume requested" in cli.ok("resume", name)
        releases.wait_phase("Progressing", 30, also=lambda s: not s.get("pausedByRequest"))
        assert "is not the current stage" in cli.refused("approve", name, "full")

        waiting = releases.wait_phase("AwaitingApproval", 120)
        assert waiting["stage"]["name"] == "ab"
        status_json = json.loads(cli.ok("status", name, "-o", "json"))
        roles = {v["role"]: v for v in status_json["versions"]}
        assert roles["candidate"]["version"] == 2 and roles["stable"]["version"] == 1
        candidate_pods = roles["candidate"]["pods"]
        assert candidate_pods and all(p["ready"] and p["model"] == "AVAILABLE" for p in candidate_pods), candidate_pods
        assert status_json["stage"]["name"] == "ab" and status_json["stage"]["approval"] is True
        assert "approval of stage ab" in status_json["stage"]["waitingFor"]
        assert status_json["metrics"][0]["name"] == "accuracy" and status_json["metrics"][0]["samples"] > 0
        outcomes = [h["outcome"] for h in status_json["history"]]
        assert outcomes.index("Paused") < outcomes.index("Resumed"), outcomes
        text = cli.ok("status", name)
        for words in ("Phase:", "AwaitingApproval", "Versions:", "AVAILABLE", "Current stage:", "ab (3/4)",
                      "approval of stage ab", "Metrics (latest check):", "History:", "Events:"):  # fmt: skip
            assert words in text, f"{words!r} not in:\n{text}"
        assert "\x1b[" not in text  # piped: plain text
        table = cli.ok("get").splitlines()
        assert table[0].split() == ["NAME", "PHASE", "STABLE", "CANDIDATE", "STAGE", "WEIGHT", "AGE"]
        assert table[1].split()[:6] == [name, "AwaitingApproval", "1", "2", "ab", "50/50"]
        every = yaml.safe_load(cli.ok("get", "-A", "-o", "yaml"))["items"]
        assert {"namespace": releases.namespace, "name": name} in [
            {"namespace": r["namespace"], "name": r["name"]} for r in every
        ]
        tmux = watchers["tmux"]
        screen = wait_for(lambda: _showing(tmux, "AwaitingApproval"), 30, message="tmux watch shows AwaitingApproval")
        assert "Current stage" in screen and "ab (3/4)" in screen and "approval of stage ab" in screen, screen

        assert "approve requested" in cli.ok("approve", name)
        done = releases.wait_phase("Succeeded", 90, also=lambda s: s.get("stableVersion") == 2)
        assert [h["reason"] for h in done["history"] if h["version"] == 2][-1] == "AllStagesPassed"

        piped = watchers["piped"]
        out, err = piped.communicate(timeout=60)
        assert piped.returncode == 0, err
        assert "\x1b[" not in out
        for words in ("Progressing v1 -> v2 stage canary", "Paused", "AwaitingApproval", "history: v2 Approved ab",
                      "history: v2 Promoted", f"{releases.namespace}/{name} ended Succeeded"):  # fmt: skip
            assert words in out, f"{words!r} not in piped watch:\n{out}"
        exit_file = tmp_path / "tmux.exit"
        wait_for(lambda: exit_file.exists() and exit_file.read_text().strip(), 30, message="tmux watch exited")
        assert exit_file.read_text().strip() == "0"
        assert "ended Succeeded" in watchers["tmux"].screen()
        assert _generation(releases) == generation

        # v3: aborted (watch exits 1), retried, promoted by request
        releases.apply(_one_replica(releases.manifest(3, stages=[SMOKE, {"name": "canary", "weight": 50, "duration": "5m"}, {"name": "full", "weight": 100}], metrics=METRICS)))  # fmt: skip
        generation = _generation(releases)
        watchers["start"]("piped-v3")
        releases.wait_phase("Progressing", 60, also=lambda s: s.get("candidateVersion") == 3)
        assert "abort requested" in cli.ok("abort", name)
        releases.wait_phase("RolledBack", 60)
        piped = watchers["piped-v3"]
        out, err = piped.communicate(timeout=60)
        assert piped.returncode == 1, (out, err)
        assert "ended RolledBack" in out
        assert "no rollout in progress" in cli.refused("abort", name)
        assert "retry requested" in cli.ok("retry", name)
        releases.wait_phase("Progressing", 60, also=lambda s: s.get("candidateVersion") == 3)
        assert "promote requested" in cli.ok("promote", name)
        final = releases.wait_phase("Succeeded", 60, also=lambda s: s.get("stableVersion") == 3)
        v3 = [(h["outcome"], h["reason"]) for h in final["history"] if h["version"] == 3]
        assert ("Aborted", "AbortRequested") in v3 and ("Retried", "RetryRequested") in v3
        assert v3[-1] == ("Promoted", "PromoteRequested")
        assert _generation(releases) == generation
        code, out, _ = cli("watch", name)  # a finished rollout: watch says so and exits at once
        assert code == 0 and "ended Succeeded" in out
