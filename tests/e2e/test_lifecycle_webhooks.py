"""Lifecycle webhooks against a real HTTP receiver in the test, with the operator allowing only its URLs.

- a failing ``preRollout`` rolls the candidate back before it sees any user;
- ``confirmPromotion`` holds the release before full until the receiver says yes, then ``postRollout`` hears
  of the promotion;
- a receiver that hangs (``confirmPromotion`` and ``onRollback``) does not hold a rollback.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from rollout_support import Releases

from devstack import processes
from devstack.testing import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.cluster, pytest.mark.timeout(420)]

PORT = processes.free_port()
BASE = f"http://127.0.0.1:{PORT}"
PATHS = ("pre", "confirm", "post", "page", "hang")
OPERATOR_FLAGS = tuple(f"--allowed-webhook-address={BASE}/{path}" for path in PATHS)
STAGES = [
    {"name": "smoke", "smoke": {"goldenSet": {"configMap": "digits-golden"}, "minAccuracy": 0.9}},
    {"name": "canary", "weight": 50, "duration": "6s"},
    {"name": "full", "weight": 100},
]


@dataclass
class Receiver:
    """Answers each path with its configured status; ``hang`` holds every request until ``release`` is set."""

    codes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PATHS, 200))
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    hanging: int = 0
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bodies(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return [body for p, body in self.received if p == path]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            path = self.path.strip("/")
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            with state.lock:
                state.received.append((path, body))
            if path == "hang":
                with state.lock:
                    state.hanging += 1
                state.release.wait(300)
                with state.lock:
                    state.hanging -= 1
            code = state.codes.get(path, 404)
            payload = f"{path}: {code}".encode()
            try:
                self.send_response(code)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the operator gave up on a hanging request (its timeout, or its gate went away)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()


@pytest.fixture
def hooks(receiver: Receiver) -> Iterator[Receiver]:
    receiver.codes = dict.fromkeys(PATHS, 200)
    receiver.release.clear()
    with receiver.lock:
        receiver.received.clear()
    yield receiver
    receiver.release.set()


def _hook(path: str, timeout: str = "5s", retries: int = 0) -> dict[str, Any]:
    return {"url": f"{BASE}/{path}", "timeout": timeout, "retries": retries}


def model_of(releases: Releases) -> str:
    """A model name of the test's own: a fault injected into its v2 must not reach another test's queries."""
    return f"digits-{releases.namespace[-5:]}"


def _stable_v1(releases: Releases) -> None:
    manifest = releases.manifest(1, stages=STAGES)
    manifest["spec"]["model"]["name"] = model_of(releases)
    releases.apply(manifest)
    releases.wait_phase("Succeeded", 180, also=lambda s: s.get("stableVersion") == 1)


def _manifest(releases: Releases, webhooks: dict[str, Any]) -> dict[str, Any]:
    manifest = releases.manifest(2, stages=STAGES)
    manifest["spec"]["model"]["name"] = model_of(releases)
    manifest["spec"]["webhooks"] = webhooks
    manifest["spec"]["model"]["metadata"] = {"training-run": "run-7"}
    return manifest


def test_a_failing_pre_rollout_webhook_rolls_back_before_any_user_is_served(
    releases: Releases, traffic: Any, hooks: Receiver
) -> None:
    _stable_v1(releases)
    hooks.codes["pre"] = 500
    with traffic(rate=20, model=model_of(releases)) as generator:
        releases.apply(_manifest(releases, {"preRollout": _hook("pre", retries=1), "postRollout": _hook("post")}))
        status = releases.wait_phase("RolledBack", 180)
        seen = generator.stats.versions

    assert seen.get("2", 0) == 0, f"v2 answered users: {dict(seen)}"
    entries = [h for h in status["history"] if h["version"] == 2]
    # The postRollout answer may be recorded after the rollback by the time status is read: find the rollback.
    rolled_back = [h for h in entries if h["outcome"] == "RolledBack"]
    assert rolled_back and rolled_back[-1]["reason"] == "PreRolloutFailed", entries
    answer = next(h["webhook"] for h in entries if h.get("webhook"))
    assert (answer["hook"], answer["ok"], answer["code"], answer["attempts"]) == ("preRollout", False, 500, 2)
    [body, _] = hooks.bodies("pre")
    assert body["hook"] == "preRollout" and body["version"] == 2 and body["metadata"] == {"training-run": "run-7"}
    wait_for(lambda: hooks.bodies("post"), 30, message="postRollout after the rollback")
    assert hooks.bodies("post")[0]["event"] == "RolledBack"
    releases.wait_events("PreRolloutFailed")


def test_confirm_promotion_holds_before_full_until_the_receiver_says_yes(
    releases: Releases, traffic: Any, hooks: Receiver
) -> None:
    _stable_v1(releases)
    hooks.codes["confirm"] = 409
    webhooks = {"confirmPromotion": _hook("confirm"), "postRollout": _hook("post")}
    with traffic(rate=30, model=model_of(releases)):
        releases.apply(_manifest(releases, webhooks))
        held = releases.wait_phase(
            "AwaitingApproval", 240, also=lambda s: (s.get("stage") or {}).get("name") == "canary"
        )
        wait_for(lambda: len(hooks.bodies("confirm")) >= 3, 60, message="confirmPromotion asked three times")
        still = releases.status()
        assert still["stableVersion"] == 1 and still["stage"]["name"] == "canary", still["message"]
        hooks.codes["confirm"] = 200
        final = releases.wait_phase("Succeeded", 120, also=lambda s: s.get("stableVersion") == 2)

    assert "confirmPromotion" in held["message"]
    answers = [
        h["webhook"] for h in final["history"] if h.get("webhook") and h["webhook"]["hook"] == "confirmPromotion"
    ]
    assert [a["ok"] for a in answers] == [False, True], "a repeated refusal is recorded once, then the yes"
    wait_for(lambda: hooks.bodies("post"), 30, message="postRollout after the promotion")
    post = hooks.bodies("post")[0]
    assert post["event"] == "Promoted" and post["version"] == 2
    wait_for(
        lambda: any(h.get("reason") == "PostRolloutAnswered" for h in releases.status()["history"]),
        30,
        message="postRollout's answer in history",
    )


def test_a_hanging_receiver_does_not_hold_a_rollback(releases: Releases, traffic: Any, hooks: Receiver) -> None:
    _stable_v1(releases)
    webhooks = {"confirmPromotion": _hook("hang", timeout="60s", retries=2), "onRollback": _hook("hang", timeout="60s")}
    with traffic(rate=40, model=model_of(releases)) as generator:
        releases.apply(_manifest(releases, webhooks))
        releases.wait_phase("AwaitingApproval", 240)
        wait_for(lambda: hooks.hanging >= 1, 60, message="confirmPromotion hanging in the receiver")
        generator.answer_wrongly("2")
        status = releases.wait_phase("RolledBack", 90)
        hanging_at_rollback = hooks.hanging

    assert hanging_at_rollback >= 1 and not hooks.release.is_set(), "the receiver was still hanging"
    assert status["stableVersion"] == 1
    entry = [h for h in status["history"] if h["version"] == 2][-1]
    assert (entry["outcome"], entry["reason"]) == ("RolledBack", "AnalysisFailed"), entry
    wait_for(
        lambda: hooks.hanging >= 2 or hooks.bodies("hang")[-1]["hook"] == "onRollback", 30, message="onRollback sent"
    )
    assert any(body["hook"] == "onRollback" and body["event"] == "RolledBack" for body in hooks.bodies("hang"))
