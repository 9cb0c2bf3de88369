"""Fuzzed ModelRelease manifests against the real API server and the real operator.

Every manifest tests/fuzz_support.py makes (valid ones and broken ones, with
PromQL and config injection attempts in every string field) is created on
devstack's API server with strict field validation, as ``kubectl apply``
does, and must meet one of two fates:

- refused at admission, with a message naming the field (``spec.…``), and
  refused by the operator's own parser too (the CRD and the pydantic models
  agree on what is invalid);
- accepted, read back by ``parse_release`` without a problem (anything the
  API server stores, the operator can act on: it never has to park an
  admitted release as Valid=False), and handled by the real operator, run
  once as a process for the whole module: within a deadline the release has
  a Valid=False condition, or ``status.observedGeneration`` and then either
  its Deployment or a Warning event saying why not; the process is alive,
  and its log has no traceback.

Before the fuzz: 168 deterministic probes (each string rule meets each
character Python and Go read differently; each type coercion), then the
hypothesis examples (``MODELRELEASE_FUZZ_EXAMPLES``, default 200).

The namespace has a ResourceQuota of zero pods.  The operator still creates
each accepted release's Deployment, ConfigMap and Services (the objects a
user's strings end up in), but no pod runs, so a fuzzed ``replicas: 10000``
costs the shared devstack nothing; each release is deleted once handled.

The devstack is shared with other test sessions, which apply their own
checkout's CRD: a disagreement is only believed if the CRD served is still
this checkout's (otherwise ours is applied again and the case asked again).

Failures are collected, not raised at the first one (hypothesis does not
shrink here: each attempt is a round trip to the cluster), and reported
together with the counts, so one run shows every disagreement.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings

from devstack import scenario
from devstack.scenario import OperatorProcess
from devstack.testing import Cluster, wait_for
from modelrelease import GROUP, PLURAL, VERSION
from modelrelease.api import InvalidRelease, parse_release
from modelrelease.api.crd import CRD_NAME, crd_manifest
from modelrelease.depth import KUBERNETES_MAX_JSON_DEPTH
from tests.fuzz_support import SEEDS, FuzzCase, fuzz_cases, probe_cases

pytestmark = pytest.mark.cluster

EXAMPLES = int(os.environ.get("MODELRELEASE_FUZZ_EXAMPLES", "200"))
HANDLED_WITHIN = 60.0
API_FIELD = re.compile(r"\bspec(\.[A-Za-z]+|\[\d+\])*")
OPERATOR_FAILURE = re.compile(r"Traceback|Unhandled|reconcile pass failed")


@dataclass
class Ledger:
    """What the fuzz saw: counts by outcome, and every case that broke a rule."""

    counts: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    def fail(self, case: FuzzCase, rule: str, detail: str) -> None:
        self.counts[f"failed: {rule}"] += 1
        self.failures.append(f"{rule}: {detail}\n    mutations: {case.describe()}")

    def report(self) -> str:
        lines = [f"{key}: {value}" for key, value in sorted(self.counts.items())]
        return "\n".join([*lines, "", *self.failures[:40]])


@pytest.fixture(scope="module")
def fuzz_namespace(cluster: Cluster) -> Iterator[str]:
    """A namespace where no pod may run (ResourceQuota pods: 0), deleted with everything in it afterwards."""
    name = f"fuzz-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", name)
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "no-pods", "namespace": name},
        "spec": {"hard": {"pods": "0"}},
    }
    cluster.apply(quota)
    try:
        yield name
    finally:
        cluster.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


@pytest.fixture(scope="module")
def fuzz_operator(
    cluster: Cluster, fuzz_namespace: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    scenario.install_crd(cluster)
    operator = OperatorProcess(
        cluster=cluster,
        namespaces=fuzz_namespace,
        log_path=tmp_path_factory.mktemp("fuzz-operator") / "operator.log",
        identity=f"fuzz-{fuzz_namespace}",
        lease_name=f"modelrelease-{fuzz_namespace}",
    )
    operator.start()
    try:
        yield operator
    finally:
        operator.stop()
        operator.delete_lease()


class FuzzTarget:
    """Creates each case on the API server, then follows it through the operator; fills a Ledger."""

    def __init__(self, cluster: Cluster, namespace: str, operator: OperatorProcess, ledger: Ledger) -> None:
        from kubernetes import client

        self.cluster = cluster
        api_client = cluster.api_client()
        self.api: Any = client.CustomObjectsApi(api_client)
        self.apps: Any = client.AppsV1Api(api_client)
        self.core: Any = client.CoreV1Api(api_client)
        self.namespace = namespace
        self.operator = operator
        self.ledger = ledger
        self.serial = 0
        self.log_offset = 0

    def create(self, body: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
        """The stored object, or None and the API server's message."""
        from kubernetes.client.exceptions import ApiException

        try:
            stored: dict[str, Any] = self.api.create_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, body, field_validation="Strict"
            )
            return stored, ""
        except ApiException as error:
            if error.status not in (400, 422):
                raise
            try:
                return None, str(json.loads(error.body).get("message", error.body))
            except ValueError:
                return None, str(error.body)

    def check(self, case: FuzzCase) -> None:
        """Admission first; a disagreement is believed only if the CRD served is still this checkout's."""
        self.ledger.counts["tried"] += 1
        stored, disagreement = self._admit(case)
        if disagreement and not self.crd_is_ours():
            # The devstack is shared: another session applied its own CRD. Put ours back and ask again.
            self.ledger.counts["asked again after another session replaced the CRD"] += 1
            if stored is not None:
                self._delete(stored["metadata"]["name"])
            scenario.install_crd(self.cluster)
            stored, disagreement = self._admit(case)
        if disagreement:
            self.ledger.fail(case, *disagreement)
        self.ledger.counts["refused at admission" if stored is None else "accepted at admission"] += 1
        if stored is not None:
            self._handled_by_operator(case, stored["metadata"]["name"], stored["spec"]["model"]["version"])

    def _admit(self, case: FuzzCase) -> tuple[dict[str, Any] | None, tuple[str, str] | None]:
        """Create the case; the stored object (None if refused) and how the two validators disagreed, if they did."""
        self.serial += 1
        body = {**case.manifest, "metadata": {"name": f"fz-{self.serial}", "namespace": self.namespace}}
        stored, message = self.create(body)
        try:
            parse_release(body if stored is None else stored)
            operator_refuses = ""
        except InvalidRelease as refused:
            operator_refuses = str(refused)
        if stored is None and not API_FIELD.search(message):
            return None, ("refusal names no field", message[:300])
        if stored is None and not operator_refuses:
            return None, ("API server refused what pydantic accepts", message[:300])
        if stored is not None and operator_refuses:
            return stored, ("API server accepted what pydantic refuses", operator_refuses[:300])
        return stored, None

    def crd_is_ours(self) -> bool:
        served = self.cluster.get("crd", CRD_NAME)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        ours = crd_manifest()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        return _numbers_as_floats(served) == _numbers_as_floats(ours)

    def _delete(self, name: str) -> None:
        self.api.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)

    def _handled_by_operator(self, case: FuzzCase, name: str, version: int) -> None:
        """Valid=False, or status written and then either the Deployment made or a Warning event saying why not."""
        try:
            handled = wait_for(lambda: self.handled_state(name), HANDLED_WITHIN, interval=0.2)
            if handled.startswith("handled"):
                handled += ", " + wait_for(lambda: self.applied_state(name, version), HANDLED_WITHIN, interval=0.2)
            self.ledger.counts[f"operator: {handled}"] += 1
        except TimeoutError as late:
            self.ledger.fail(case, "operator did not handle it", f"{name}: {late}")
        finally:
            self._delete(name)
        self.operator_still_well(case, name)

    def handled_state(self, name: str) -> str | None:
        found: dict[str, Any] = self.api.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)
        status = found.get("status") or {}
        valid = next((c for c in status.get("conditions") or [] if c.get("type") == "Valid"), None)
        if valid is not None and valid.get("status") == "False":
            return f"Valid=False {valid.get('reason')}"
        if status.get("observedGeneration") == found["metadata"].get("generation"):
            return f"handled, phase {status.get('phase')}"
        return None

    def applied_state(self, name: str, version: int) -> str | None:
        """ "Deployment applied", or the reasons of the Warning events on the release, or None (not yet)."""
        from kubernetes.client.exceptions import ApiException

        try:
            self.apps.read_namespaced_deployment(f"{name}-v{version}", self.namespace)
            return "Deployment applied"
        except ApiException as error:
            if error.status != 404:
                raise
        selector = f"involvedObject.kind=ModelRelease,involvedObject.name={name},type=Warning"
        events = self.core.list_namespaced_event(self.namespace, field_selector=selector).items
        return "Warning " + ",".join(sorted({e.reason for e in events})) if events else None

    def operator_still_well(self, case: FuzzCase, name: str) -> None:
        if not self.operator.running:
            self.ledger.fail(case, "operator exited", self.operator.log_tail(40))
            pytest.fail(self.ledger.report())
        text = Path(self.operator.log_path).read_text(errors="replace")
        fresh, self.log_offset = text[self.log_offset :], len(text)
        if OPERATOR_FAILURE.search(fresh):
            self.ledger.fail(case, "operator logged a failure", f"{name}:\n{fresh[-1500:]}")


def test_every_fuzzed_manifest_is_refused_by_field_or_handled_by_the_operator(
    cluster: Cluster, fuzz_namespace: str, fuzz_operator: OperatorProcess
) -> None:
    ledger = Ledger()
    target = FuzzTarget(cluster, fuzz_namespace, fuzz_operator, ledger)
    started = time.monotonic()
    for case in probe_cases():
        target.check(case)

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(fuzz_cases())
    def run(case: FuzzCase) -> None:
        target.check(case)

    run()
    ledger.counts["seconds"] = round(time.monotonic() - started)
    print("\n" + ledger.report())
    assert ledger.counts["accepted at admission"] >= EXAMPLES // 5, ledger.report()
    assert ledger.counts["refused at admission"] >= EXAMPLES // 5, ledger.report()
    assert not ledger.failures, ledger.report()


def _numbers_as_floats(node: Any) -> Any:
    """The API server stores schema numbers as float64 (0.0 comes back as 0, 2**63-1 as 2**63)."""
    if isinstance(node, dict):
        return {key: _numbers_as_floats(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_numbers_as_floats(value) for value in node]
    if isinstance(node, int | float) and not isinstance(node, bool):
        return float(node)
    return node


def _observed_generation(cluster: Cluster, namespace: str, name: str, operator: OperatorProcess) -> str:
    """Read with kubectl: this test process's own JSON decoder stops near 1,000 levels."""
    assert operator.running, f"the operator exited:\n{operator.log_tail(40)}"
    path = "jsonpath={.status.observedGeneration}"
    return cluster.kubectl("get", "modelrelease", name, "-n", namespace, "-o", path).stdout.strip()


def _deep_manifest(name: str, depth: int) -> str:
    """JSON text of a release whose podTemplate nests ``depth`` objects (built as text: json.dumps stops near 1000)."""
    manifest = {**SEEDS[0], "metadata": {"name": name}}
    manifest["spec"] = {**manifest["spec"], "serving": {**manifest["spec"]["serving"], "podTemplate": {"x": "@"}}}
    return json.dumps(manifest).replace('"@"', '{"n": ' * depth + "1" + "}" * depth)


def test_a_pod_template_nested_as_deep_as_the_api_server_allows_leaves_the_operator_running(
    cluster: Cluster, fuzz_namespace: str, fuzz_operator: OperatorProcess
) -> None:
    """A free-form field 1,500 levels deep used to make kopf's watch raise RecursionError and the operator exit."""
    ledger = Ledger()
    target = FuzzTarget(cluster, fuzz_namespace, fuzz_operator, ledger)
    for depth in (1_500, KUBERNETES_MAX_JSON_DEPTH - 10):
        name = f"deep-{depth}"
        cluster.kubectl("create", "-n", fuzz_namespace, "-f", "-", input=_deep_manifest(name, depth))
        observed = wait_for(
            lambda name=name: _observed_generation(cluster, fuzz_namespace, name, fuzz_operator),
            HANDLED_WITHIN,
            message=name,
        )
        assert observed == "1", observed
        assert fuzz_operator.running, fuzz_operator.log_tail(60)
    # The watch still delivers: an ordinary release created afterwards is handled too.
    stored, message = target.create({**SEEDS[0], "metadata": {"name": "after-deep", "namespace": fuzz_namespace}})
    assert stored is not None, message
    wait_for(lambda: target.handled_state("after-deep"), HANDLED_WITHIN, message="a release after the deep ones")
    target.operator_still_well(FuzzCase(SEEDS[0], ["deep podTemplate"]), "after-deep")
    assert not ledger.failures, ledger.report()
