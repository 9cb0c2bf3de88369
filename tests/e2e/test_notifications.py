"""Notifications against real HTTP receivers in the test: in order, in both formats, and never in the way.

- a receiver hears a rollout in the order the engine decided it (start, each
  stage change, the wait for approval, the promotion; then v3, a worse
  model, rolled back at its smoke test), from
  the release's own ``spec.notifications`` (generic and Slack bodies) and from
  the operator-wide ``--notify-webhook``;
- a receiver that is down (it accepts connections and never answers, so every
  attempt runs into its 30 s timeout and is retried) delays nothing: the
  rollout is promoted while that receiver is still on its first or second
  notice.  Counted in attempts, not compared in seconds with another rollout
  (whose judge needs a different amount of traffic, and which a loaded
  machine stretches by tens of seconds): a pass that waited for two notices
  would have let the receiver spend all eight of their attempts, 254 s,
  before the promotion.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from rollout_support import Releases

from devstack import processes
from devstack.testing import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.cluster, pytest.mark.timeout(600)]

PORT = processes.free_port()
BASE = f"http://127.0.0.1:{PORT}"
DOWN_PORT = processes.free_port()
DOWN = f"http://127.0.0.1:{DOWN_PORT}/down"
OPERATOR_FLAGS = (
    f"--allowed-webhook-address={BASE}/release",
    f"--allowed-webhook-address={BASE}/slack",
    f"--allowed-webhook-address={DOWN}",
    f"--notify-webhook={BASE}/all",
)
STAGES = [
    {"name": "smoke", "smoke": {"goldenSet": {"configMap": "digits-golden"}, "minAccuracy": 0.9}},
    {"name": "canary", "weight": 50, "duration": "6s"},
    {"name": "full", "weight": 100},
]
DOWN_TIMEOUT, DOWN_RETRIES = 30.0, 3
ATTEMPTS_PER_NOTICE = DOWN_RETRIES + 1
"""A notice to the down receiver costs it 4 x 30 s timeouts with back-off 1, 2, 4 s between: 127 s."""


@dataclass
class Receiver:
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    namespace: str = ""
    """Only bodies about this namespace's release count (the module's tests share the receiver)."""

    def bodies(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return [body for p, body in self.received if p == path and self._mine(body)]

    def _mine(self, body: dict[str, Any]) -> bool:
        return body.get("namespace") == self.namespace or self.namespace in json.dumps(body.get("blocks", ""))

    def events(self, path: str, version: int) -> list[tuple[str, str | None, str | None]]:
        return [(b["event"], b["fromStage"], b["toStage"]) for b in self.bodies(path) if b.get("version") == version]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            with state.lock:
                state.received.append((self.path.strip("/"), body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Down:
    """Accepts connections and never answers: each attempt waits for its whole timeout."""

    connections: list[socket.socket] = field(default_factory=list)


@pytest.fixture(scope="module")
def down() -> Iterator[Down]:
    state = Down()
    listener = socket.create_server(("127.0.0.1", DOWN_PORT), backlog=64)
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.5)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            state.connections.append(connection)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        stop.set()
        thread.join(5)
        for connection in state.connections:
            connection.close()
        listener.close()


def model_of(releases: Releases) -> str:
    """A model name of the test's own: a fault injected into a version must not reach another test's queries."""
    return f"digits-{releases.namespace[-5:]}"


def _manifest(releases: Releases, version: int, notifications: list[dict[str, Any]], stages: Any = None) -> Any:
    manifest = releases.manifest(version, stages=stages or STAGES)
    manifest["spec"]["model"]["name"] = model_of(releases)
    manifest["spec"]["notifications"] = notifications
    return manifest


def _stable_v1(releases: Releases) -> None:
    releases.apply(_manifest(releases, 1, []))
    releases.wait_phase("Succeeded", 180, also=lambda s: s.get("stableVersion") == 1)


APPROVAL = [STAGES[0], {**STAGES[1], "approval": True}, STAGES[2]]


def test_a_receiver_hears_a_rollout_in_order(releases: Releases, traffic: Any, receiver: Receiver) -> None:
    receiver.namespace = releases.namespace
    _stable_v1(releases)
    mine = [{"url": f"{BASE}/release"}, {"url": f"{BASE}/slack", "format": "slack"}]
    with traffic(rate=30, model=model_of(releases)):
        releases.apply(_manifest(releases, 2, mine, APPROVAL))
        releases.wait_phase("AwaitingApproval", 240, also=lambda s: (s.get("stage") or {}).get("name") == "canary")
        wait_for(lambda: ("AwaitingApproval", "canary", "canary") in receiver.events("release", 2), 30)
        releases.annotate("modelrelease.io/approve", "canary")
        releases.wait_phase("Succeeded", 180, also=lambda s: s.get("stableVersion") == 2)
        wait_for(lambda: ("Promoted", None, None) in receiver.events("release", 2), 30, message="Promoted told")

        releases.apply(_manifest(releases, 3, mine))  # devstack's v3 is a worse model: its smoke test fails
        rolled_back = releases.wait_phase("RolledBack", 180)
        wait_for(lambda: receiver.events("release", 3)[-1:] == [("RolledBack", "smoke", None)], 30)

    expected = [
        ("RolloutStarted", None, "smoke"),
        ("StageChanged", "smoke", "canary"),
        ("AwaitingApproval", "canary", "canary"),
        ("StageChanged", "canary", "full"),
        ("Promoted", None, None),
    ]
    assert receiver.events("release", 2) == expected
    assert receiver.events("all", 2) == expected, "the operator-wide receiver hears the same, in the same order"
    assert receiver.events("release", 3) == [expected[0], ("RolledBack", "smoke", None)]
    back = receiver.bodies("release")[-1]
    assert (back["release"], back["namespace"], back["reason"]) == ("digits", releases.namespace, "SmokeFailed")
    assert (back["stableVersion"], back["candidateVersion"], back["phase"]) == (2, None, "RolledBack")
    assert back["time"] == next(h["at"] for h in rolled_back["history"] if h["outcome"] == "RolledBack")
    slack = receiver.bodies("slack")
    assert len(slack) == 7 and all(set(body) == {"text", "blocks"} for body in slack)
    who = f"{releases.namespace}/digits"
    assert slack[2]["text"].startswith(f":raised_hand: {who} v2: waiting for approval at stage canary")
    assert slack[-1]["text"].startswith(f":rewind: {who} v3: rolled back at stage smoke")


def _timed_rollout(releases: Releases, version: int, notifications: list[dict[str, Any]]) -> float:
    started = time.monotonic()
    releases.apply(_manifest(releases, version, notifications))
    releases.wait_phase("Succeeded", 240, also=lambda s: s.get("stableVersion") == version)
    return time.monotonic() - started


def test_a_receiver_that_is_down_delays_nothing(
    releases: Releases, traffic: Any, receiver: Receiver, down: Down
) -> None:
    receiver.namespace = releases.namespace
    _stable_v1(releases)
    dead = {"url": DOWN, "timeout": f"{DOWN_TIMEOUT:g}s", "retries": DOWN_RETRIES}
    with traffic(rate=30, model=model_of(releases)):
        up = _timed_rollout(releases, 2, [{"url": f"{BASE}/release"}])
        attempts_before = len(down.connections)
        stuck = _timed_rollout(releases, 5, [dead])  # v5: as good as v2 within the analysis' margin
        attempts_by_promotion = len(down.connections) - attempts_before
    told = receiver.events("release", 2)
    print(
        f"rollout with the receiver up: {up:.1f} s; with it down: {stuck:.1f} s, "
        f"{attempts_by_promotion} attempts on the down receiver by then"
    )
    assert told[-1] == ("Promoted", None, None)
    assert attempts_by_promotion >= 1, "the down receiver was tried during the rollout"
    # Two notices (started, smoke -> canary) precede the promotion: had a pass waited for
    # them, all their attempts would have been spent before it.
    assert attempts_by_promotion < 2 * ATTEMPTS_PER_NOTICE, (
        f"{attempts_by_promotion} attempts before the promotion ({stuck:.1f} s): passes waited for notices"
    )
