"""spec.model.version changed again while a rollout runs (a new commit in Git): the old candidate is retired
cleanly and the newest version rolls out in its place.

The first candidate is held at an approval stage so that the change lands
mid-rollout on every run, however slow the machine; the stage serves users
(one candidate pod next to one stable pod), so retiring it is observable in
the traffic users actually get.
"""

from __future__ import annotations

from typing import Any

import pytest
from rollout_support import ACCURACY_RATIO, Releases, answers_since

from devstack.testing import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.cluster, pytest.mark.timeout(600)]

STAGES = [
    {"name": "smoke", "smoke": {"goldenSet": {"configMap": "digits-golden"}, "minAccuracy": 0.9}},
    {"name": "canary", "weight": 50, "duration": "2s", "approval": True},
    {"name": "full", "weight": 100},
]


# The scenario is about retiring a candidate, not judging one: a wide margin lets the sequential judge pass
# v5 (0.953 against v1's 0.955) within a few hundred requests, where maxDrop 0.02 needs thousands.
METRICS = [{"name": "accuracy", "ratio": ACCURACY_RATIO, "min": 0.8, "compareToBaseline": {"maxDrop": 0.1}}]


def test_version_changed_mid_rollout_retires_the_second_cleanly_and_rolls_the_third_out(
    releases: Releases, traffic: Any
) -> None:
    manifest = releases.manifest(1, stages=STAGES, metrics=METRICS)
    manifest["spec"]["serving"]["replicas"] = 1
    releases.apply(manifest)
    releases.wait_phase("Succeeded", 90, also=lambda s: s.get("stableVersion") == 1)

    with traffic(rate=30) as generator:
        releases.set_version(5)
        releases.wait_phase("AwaitingApproval", 90, also=lambda s: s.get("candidateVersion") == 5)
        wait_for(lambda: generator.stats.versions.get("5", 0) >= 20, 30, message="v5 serves users in its canary")

        releases.set_version(2)
        status = releases.wait_phase("AwaitingApproval", 90, also=lambda s: s.get("candidateVersion") == 2)
        wait_for(lambda: (releases.deployment(5) or {}).get("spec", {}).get("replicas") == 0, 30, message="v5 at 0")
        selector = f"modelrelease.io/release={releases.name},modelrelease.io/version=5"
        wait_for(
            lambda: not releases.cluster.get("pods", namespace=releases.namespace, selector=selector),
            60,
            message="v5's pods gone",
        )
        _wait_for_answers_without(generator, version="5", answers=60)
        assert status["stableVersion"] == 1, "the stable version is untouched by the change"

        releases.cluster.kubectl(
            "annotate", "modelrelease", releases.name, "-n", releases.namespace, "modelrelease.io/approve=canary"
        )
        final = releases.wait_phase("Succeeded", 60, also=lambda s: s.get("stableVersion") == 2)
        after = generator.stats
        wait_for(lambda: answers_since(after, generator.stats).get("2", 0) >= 30, 30, message="v2 serves users")

    v5 = [h for h in final["history"] if h["version"] == 5]
    assert v5[-1]["outcome"] == "Superseded" and v5[-1]["stage"] == "canary", v5[-1]
    assert "changed to v2" in v5[-1]["message"], v5[-1]
    assert not [h for h in v5 if h["outcome"] in ("Promoted", "RolledBack")], "retired, not judged"
    assert final.get("rejectedVersion") is None, "a superseded version is not a rejected one"
    v2 = [h["outcome"] for h in final["history"] if h["version"] == 2]
    assert v2[0] == "Started" and v2[-1] == "Promoted", v2
    assert releases.wait_events("Superseded")
    wait_for(lambda: (releases.deployment(1) or {}).get("spec", {}).get("replicas") == 0, 30, message="v1 at 0")
    assert (releases.deployment(5) or {})["spec"]["replicas"] == 0


def _wait_for_answers_without(generator: Any, version: str, answers: int) -> None:
    """Measured from traffic: ``answers`` user answers in a row, none of them from ``version``."""
    window = {"since": generator.stats}

    def clean_run() -> bool:
        seen = answers_since(window["since"], generator.stats)
        if seen.get(version):
            window["since"] = generator.stats
            return False
        return sum(seen.values()) >= answers

    wait_for(clean_run, 30, interval=0.2, message=f"{answers} answers in a row without v{version}")
