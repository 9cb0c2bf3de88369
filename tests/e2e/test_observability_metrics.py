"""The operator's rollout metrics, the chart's dashboard and its alerts, during real rollouts on devstack.

One release goes v1 stable, v2 through smoke, an approval-gated canary and
full to promotion, then v3 (a worse model) rolled back; at each stage the
operator's ``/metrics`` must show what its status says, at that moment.
The operator is scraped by devstack's Prometheus meanwhile, and afterwards
every query of the Grafana dashboard, selecting this release, must return
data over the rollouts' time range.

The chart's PrometheusRule groups (rendered by helm with short ``for``
durations) run in a Prometheus of the module's own that scrapes the
operator under the job name the chart's ServiceMonitor gives it: the
rollback, the wait for approval, the inconclusive analysis, an operator
without a leader and an operator down must each fire their alert.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_support import OPERATOR_NAMESPACE, one, render
from dashboard_support import load, queries, substitute
from prometheus_client.parser import text_string_to_metric_families
from rollout_support import ACCURACY_RATIO, OperatorProcess, Releases

from devstack import prometheus
from devstack.testing import Cluster, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.cluster, pytest.mark.timeout(600)]

DEAD_PROMETHEUS = "http://127.0.0.1:9"
"""Nothing listens on the discard port: every query to it fails."""
OPERATOR_FLAGS = (f"--allowed-prometheus-address={DEAD_PROMETHEUS}",)

SMOKE = {"name": "smoke", "smoke": {"goldenSet": {"configMap": "digits-golden"}, "minAccuracy": 0.9}}
PROMOTION_STAGES = [
    SMOKE,
    {"name": "canary-25", "weight": 25, "duration": "6s", "approval": True},
    {"name": "full", "weight": 100, "minChecks": 1},
]
ROLLBACK_STAGES = [
    {**SMOKE, "smoke": {**SMOKE["smoke"], "minAccuracy": 0.3}},  # v3 passes a lenient smoke test
    {"name": "canary", "weight": 50, "duration": "60s"},
    {"name": "full", "weight": 100},
]
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
CHART_RELEASE = "mr"
OPERATOR_JOB = {"job": f"{CHART_RELEASE}-modelrelease-metrics", "namespace": OPERATOR_NAMESPACE}
"""The labels the chart's ServiceMonitor gives the operator's targets (job: the metrics Service's name)."""
ALERT_DURATIONS = {"waitingFor": "3s", "inconclusiveFor": "3s", "operatorDownFor": "3s"}


@pytest.fixture(scope="module")
def scraped_operator(cluster: Cluster, operator_process: OperatorProcess) -> Iterator[OperatorProcess]:
    """The module's operator, scraped by devstack's Prometheus (as the chart's ServiceMonitor has it scraped)."""
    assert cluster.prometheus_url, "devstack runs no Prometheus"
    address = operator_process.metrics_url.removeprefix("http://")
    job = f"modelrelease-operator-{operator_process.identity}"
    prometheus.register_target(cluster.state_dir, job, address)
    try:
        wait_for(
            lambda: prometheus.query_value(str(cluster.prometheus_url), f'up{{job="{job}"}}') == 1,
            60,
            interval=0.5,
            message="Prometheus scrapes the operator",
        )
        yield operator_process
    finally:
        prometheus.unregister_target(cluster.state_dir, job, address)


@pytest.fixture(scope="module")
def alerting(
    cluster: Cluster, operator_process: OperatorProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path]]:
    """A Prometheus with the chart's alerting rules, scraping the module's operator as its ServiceMonitor would."""
    values = {
        "metrics.prometheusRule.enabled": True,
        **{f"metrics.prometheusRule.{k}": v for k, v in ALERT_DURATIONS.items()},
    }
    rule = one(render(values, release=CHART_RELEASE), "PrometheusRule")
    state_dir = tmp_path_factory.mktemp("alerting")
    prometheus.rules_dir(state_dir).mkdir(parents=True)
    (prometheus.rules_dir(state_dir) / "modelrelease.yml").write_text(
        yaml.safe_dump({"groups": rule["spec"]["groups"]})
    )
    with prometheus.serve(state_dir) as url:
        address = operator_process.metrics_url.removeprefix("http://")
        prometheus.register_target(state_dir, OPERATOR_JOB["job"], address, OPERATOR_JOB)
        wait_for(lambda: prometheus.query_value(url, "sum(modelrelease_leader)") == 1, 60, message="leader scraped")
        yield url, state_dir


def _firing(url: str, alert: str, **labels: str) -> list[dict[str, Any]]:
    selector = ",".join(f'{k}="{v}"' for k, v in {"alertname": alert, "alertstate": "firing", **labels}.items())
    return prometheus.query(url, f"ALERTS{{{selector}}}")


def _samples(operator: OperatorProcess) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(operator.metrics())
        for sample in family.samples
    }


def _of(releases: Releases, samples: Samples) -> Samples:
    """This release's ``modelrelease_release_*`` samples, keyed by name and the labels besides namespace/release."""
    own = {("namespace", releases.namespace), ("release", releases.name)}
    return {
        (name, labels - own): value
        for (name, labels), value in samples.items()
        if name.startswith("modelrelease_release_") and own <= labels
    }


def _key(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset(labels.items())


def _settled(
    releases: Releases, operator: OperatorProcess, wanted: Callable[[dict[str, Any]], bool], timeout: float
) -> tuple[dict[str, Any], Samples]:
    """A status that ``wanted`` accepts, and the release's gauges showing that same status.

    The gauges are read before and after the status; when the two reads
    agree (time in stage aside, it always moves) nothing was written in
    between.  They must show the status read in the middle
    (``_assert_gauges_show``); a pass whose status write the operator has
    not yet seen answered is a moment's lag, so the check is retried until
    the deadline and the last mismatch is what fails the test.
    """
    mismatch: list[str] = []

    def steady(samples: Samples) -> Samples:
        return {key: value for key, value in samples.items() if key[0] != "modelrelease_release_stage_seconds"}

    def attempt() -> tuple[dict[str, Any], Samples] | None:
        before = _of(releases, _samples(operator))
        status = releases.status()
        after = _of(releases, _samples(operator))
        if not wanted(status) or steady(before) != steady(after):
            return None
        try:
            _assert_gauges_show(status, after)
        except (AssertionError, KeyError) as error:
            mismatch[:] = [f"{type(error).__name__}: {error}\nstatus: {status}\ngauges: {after}"]
            return None
        return status, after

    try:
        return wait_for(attempt, timeout, interval=0.3, message="a status the gauges agree with")
    except TimeoutError:
        raise AssertionError(mismatch[0] if mismatch else "the wanted status never came") from None


def _stage(name: str, phase: str | None = None) -> Callable[[dict[str, Any]], bool]:
    def wanted(status: dict[str, Any]) -> bool:
        return (status.get("stage") or {}).get("name") == name and (phase is None or status.get("phase") == phase)

    return wanted


def _assert_gauges_show(status: dict[str, Any], gauges: Samples) -> None:
    """Phase, versions, weights, stage and every metric's verdict and values are the status's own."""
    phases = {dict(labels)["phase"]: v for (name, labels), v in gauges.items() if name == "modelrelease_release_phase"}
    assert phases[status["phase"]] == 1 and sum(phases.values()) == 1, phases
    assert gauges[_key("modelrelease_release_stable_version")] == status["stableVersion"]
    candidate = gauges.get(_key("modelrelease_release_candidate_version"))
    assert candidate == status.get("candidateVersion"), (candidate, status.get("candidateVersion"))
    stage = status.get("stage")
    assert gauges[_key("modelrelease_release_desired_weight")] == (stage["weight"] if stage else 0)
    assert gauges[_key("modelrelease_release_actual_weight")] == (stage.get("actualWeight", 0) if stage else 0)
    if stage:
        assert gauges[_key("modelrelease_release_stage_index", stage=stage["name"])] == stage["index"]
        if stage.get("enteredAt"):
            entered = datetime.fromisoformat(stage["enteredAt"].replace("Z", "+00:00"))
            in_stage = gauges[_key("modelrelease_release_stage_seconds", stage=stage["name"])]
            # Read a moment after the scrape; whole-second timestamps.
            assert -1 <= (datetime.now(UTC) - entered).total_seconds() - in_stage <= 10, (in_stage, stage)
    else:
        assert not any(name.startswith("modelrelease_release_stage") for name, _ in gauges)
    for metric in (status.get("analysis") or {}).get("metrics") or []:
        verdict = _key("modelrelease_release_metric_verdict", metric=metric["name"], verdict=metric["verdict"])
        assert gauges[verdict] == 1, (metric, gauges)
        for role, field in (("candidate", "candidate"), ("stable", "baseline")):
            shown = gauges.get(_key("modelrelease_release_metric_value", metric=metric["name"], role=role))
            assert shown == metric.get(field), (role, shown, metric)


def _counter(operator: OperatorProcess, name: str, releases: Releases, reason: str) -> float:
    labels = frozenset({"namespace": releases.namespace, "release": releases.name, "reason": reason}.items())
    return _samples(operator).get((name, labels), 0.0)


def test_rollout_metrics_follow_a_promotion_and_a_rollback_and_every_dashboard_query_has_data(
    releases: Releases, traffic: Any, scraped_operator: OperatorProcess, cluster: Cluster, alerting: tuple[str, Path]
) -> None:
    operator = scraped_operator
    alerts_url = alerting[0]
    own = {"namespace": releases.namespace, "release": releases.name}
    started = time.time()
    releases.apply(releases.manifest(1, stages=PROMOTION_STAGES))
    status, gauges = _settled(releases, operator, lambda s: s.get("phase") == "Succeeded", 120)
    assert _counter(operator, "modelrelease_promotions_total", releases, "InitialVersion") == 1

    with traffic(rate=50):
        releases.set_version(2)
        # Smoke: the candidate runs, no user traffic, stage 0.
        status, gauges = _settled(releases, operator, _stage("smoke"), 120)
        assert gauges[_key("modelrelease_release_candidate_version")] == 2
        assert gauges[_key("modelrelease_release_desired_weight")] == 0

        # The canary at the weight the router reached, judged: verdicts and values as status has them.
        def judged_at_weight(s: dict[str, Any]) -> bool:
            stage, metrics = s.get("stage") or {}, (s.get("analysis") or {}).get("metrics") or []
            counted = any((m.get("samples") or 0) > 0 for m in metrics)
            return stage.get("name") == "canary-25" and stage.get("actualWeight") == 25 and counted

        status, gauges = _settled(releases, operator, judged_at_weight, 150)
        assert gauges[_key("modelrelease_release_stage_index", stage="canary-25")] == 1
        assert gauges[_key("modelrelease_release_desired_weight")] == 25
        assert gauges[_key("modelrelease_release_actual_weight")] == 25
        assert gauges[_key("modelrelease_release_metric_samples", metric="accuracy")] > 0
        assert gauges.get(_key("modelrelease_release_metric_value", metric="accuracy", role="stable")) is not None

        # Held for approval once the stage passed: the phase says so, time in stage keeps counting.
        status, gauges = _settled(releases, operator, _stage("canary-25", "AwaitingApproval"), 120)
        assert gauges[_key("modelrelease_release_metric_verdict", metric="accuracy", verdict="pass")] == 1
        waited = gauges[_key("modelrelease_release_stage_seconds", stage="canary-25")]
        wait_for(
            lambda: (
                _of(releases, _samples(operator))[_key("modelrelease_release_stage_seconds", stage="canary-25")]
                >= waited + 2
            ),
            30,
            message="time in stage grows while the stage waits",
        )
        wait_for(
            lambda: _firing(alerts_url, "ModelReleaseWaitingTooLong", phase="AwaitingApproval", **own),
            60,
            message="the alert on a release waiting too long fires",
        )
        releases.annotate("modelrelease.io/approve", "canary-25")

        status, gauges = _settled(releases, operator, lambda s: s.get("stableVersion") == 2, 120)
        promoted = [h for h in status["history"] if h["outcome"] == "Promoted" and h["version"] == 2]
        assert _counter(operator, "modelrelease_promotions_total", releases, promoted[-1]["reason"]) == 1

        # v3 is worse: rolled back on accuracy against v2.
        metrics = [{"name": "accuracy", "ratio": ACCURACY_RATIO, "min": 0.5, "compareToBaseline": {"maxDrop": 0.02}}]
        releases.apply(releases.manifest(3, stages=ROLLBACK_STAGES, metrics=metrics))
        status, gauges = _settled(releases, operator, _stage("canary", "Progressing"), 150)
        assert gauges[_key("modelrelease_release_desired_weight")] == 50
        status, gauges = _settled(releases, operator, lambda s: s.get("phase") == "RolledBack", 150)

    assert gauges[_key("modelrelease_release_stable_version")] == 2
    assert _key("modelrelease_release_candidate_version") not in gauges
    assert _counter(operator, "modelrelease_rollbacks_total", releases, "AnalysisFailed") == 1
    wait_for(lambda: _firing(alerts_url, "ModelReleaseRolledBack", **own), 60, message="the rollback alert fires")
    operator_wide = _samples(operator)
    assert operator_wide[_key("modelrelease_leader")] == 1
    assert operator_wide[_key("modelrelease_reconcile_duration_seconds_count", outcome="ok")] > 10

    # Every dashboard query, for this release, over the rollouts: Prometheus scraped what the dashboard reads.
    url = str(cluster.prometheus_url)
    wait_for(
        lambda: prometheus.query_value(url, _phase_query(releases, "RolledBack")) == 1,
        30,
        message="Prometheus scraped the rollback",
    )
    empty = [
        where
        for where, expr in queries(load())
        if not _range_has_data(url, substitute(expr, releases.namespace, releases.name), started, time.time())
    ]
    assert not empty, f"dashboard queries without data over the rollouts: {empty}"


def test_queries_prometheus_cannot_answer_are_counted_and_leave_the_verdict_inconclusive(
    releases: Releases, operator_process: OperatorProcess, alerting: tuple[str, Path]
) -> None:
    errors_before = _samples(operator_process)[_key("modelrelease_prometheus_query_errors_total")]
    stages = [{"name": "canary", "weight": 50, "duration": "60s"}, {"name": "full", "weight": 100}]
    manifest = releases.manifest(1, stages=stages)
    manifest["spec"]["serving"]["replicas"] = 1
    releases.apply(manifest)
    releases.wait_phase("Succeeded", 120)
    manifest = releases.manifest(2, stages=stages, prometheus={"address": DEAD_PROMETHEUS})
    manifest["spec"]["serving"]["replicas"] = 1

    releases.apply(manifest)

    def inconclusive(s: dict[str, Any]) -> bool:
        metrics = (s.get("analysis") or {}).get("metrics") or []
        return _stage("canary")(s) and any("unreachable" in m.get("message", "") for m in metrics)

    _, gauges = _settled(releases, operator_process, inconclusive, 150)
    assert gauges[_key("modelrelease_release_metric_verdict", metric="accuracy", verdict="inconclusive")] == 1
    assert _key("modelrelease_release_metric_value", metric="accuracy", role="candidate") not in gauges
    errors = _samples(operator_process)[_key("modelrelease_prometheus_query_errors_total")]
    assert errors > errors_before
    own = {"namespace": releases.namespace, "release": releases.name, "metric": "accuracy"}
    wait_for(
        lambda: _firing(alerting[0], "ModelReleaseAnalysisInconclusive", **own),
        60,
        message="the alert on an inconclusive analysis fires",
    )


def test_an_operator_without_a_leader_and_an_operator_down_fire_their_alerts(
    cluster: Cluster,
    operator_process: OperatorProcess,
    alerting: tuple[str, Path],
    tmp_path: Path,
    namespace_prefix: str,
) -> None:
    url, state_dir = alerting
    assert not _firing(url, "ModelReleaseOperatorWithoutLeader")
    assert not _firing(url, "ModelReleaseOperatorDown")
    # A second replica of the module's operator: same Lease, so it stands by while the first leads.
    standby = OperatorProcess(
        cluster=cluster,
        namespaces=f"{namespace_prefix}-*",
        log_path=tmp_path / "standby.log",
        identity=f"standby-{namespace_prefix}",
        lease_name=operator_process.lease_name,
    )
    leader = operator_process.metrics_url.removeprefix("http://")
    standby_address = standby.metrics_url.removeprefix("http://")
    standby.start()
    try:
        # Only the standby is scraped: up, but nobody among the scraped replicas leads.
        prometheus.register_target(state_dir, OPERATOR_JOB["job"], standby_address, OPERATOR_JOB)
        prometheus.unregister_target(state_dir, OPERATOR_JOB["job"], leader)
        wait_for(lambda: _firing(url, "ModelReleaseOperatorWithoutLeader"), 60, message="no-leader alert fires")
        assert not _firing(url, "ModelReleaseOperatorDown")
        standby.stop()
        wait_for(lambda: _firing(url, "ModelReleaseOperatorDown"), 60, message="operator-down alert fires")
    finally:
        standby.stop()
        prometheus.unregister_target(state_dir, OPERATOR_JOB["job"], standby_address)
        prometheus.register_target(state_dir, OPERATOR_JOB["job"], leader, OPERATOR_JOB)


def _phase_query(releases: Releases, phase: str) -> str:
    return f'modelrelease_release_phase{{namespace="{releases.namespace}",release="{releases.name}",phase="{phase}"}}'


def _range_has_data(url: str, expr: str, start: float, end: float) -> bool:
    import httpx

    with httpx.Client(timeout=10, trust_env=False) as client:
        response = client.get(
            f"{url}/api/v1/query_range", params={"query": expr, "start": start, "end": end, "step": "2s"}
        )
    body = response.json()
    assert response.status_code == 200 and body.get("status") == "success", (expr, body)
    return any(series.get("values") for series in body["data"]["result"])
