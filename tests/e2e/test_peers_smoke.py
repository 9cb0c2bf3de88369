"""Flagger and Argo Rollouts run on devstack: each starts, takes its Lease, and acts on the devstack model server.

Why: issue 17's head to head needs the peers to run on the same cluster,
model pods, gateway and Prometheus as the operator.  This is the smallest
proof that they do, before any benchmark trusts them: for each peer, the
process answers its health check, holds its leader-election Lease, takes
over a model-server workload, and, when the model version changes, shifts
real router weights (Flagger an HTTPRoute that devstack's Traefik serves,
Argo Rollouts a TraefikService that a Traefik with the CRD provider serves).

The peers are built by ``make setup`` (devstack.peers, cached by version);
a missing peer FAILS its test with the command to run, never skips it.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack import peers
from devstack.testing import Cluster, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.cluster, pytest.mark.timeout(240)]

MODEL = "digits"


@pytest.fixture(scope="module")
def peer_crds(cluster: Cluster) -> None:
    """The CRDs of the peers that are built (Flagger's, Argo Rollouts', Traefik's), applied and Established."""
    t0 = time.monotonic()
    files = peers.crd_files([peer for peer in peers.PEERS if peer.current()])
    cluster.kubectl("apply", "--server-side", "--force-conflicts", *(f"--filename={path}" for path in files))
    names = peers.crd_names(files)
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", *(f"crd/{name}" for name in names))
    print(f"peer CRDs applied and Established in {time.monotonic() - t0:.1f} s", flush=True)


@pytest.fixture
def model_configs(cluster: Cluster, namespace: str) -> str:
    """The ConfigMaps pinning v1 and v3 of the digits model, in the test's namespace."""
    cluster.apply([peers.version_config_map(MODEL, 1), peers.version_config_map(MODEL, 3)], namespace=namespace)
    return namespace


def built(peer: peers.Peer) -> None:
    """Fail (never skip) when ``make setup`` has not built ``peer``: setup installs it, so its absence is a bug."""
    if not peer.current():
        pytest.fail(f"{peer.name} is not built ({peer.path()} missing or stale): run `make setup`")


@contextlib.contextmanager
def started(process: peers.PeerProcess, timeout: float = 60) -> Iterator[peers.PeerProcess]:
    process.start()
    try:
        wait_for(process.healthy, timeout, interval=0.3, message=f"{process.name} healthy")
        yield process
    finally:
        process.stop()


def lease_holder(cluster: Cluster, namespace: str, name: str) -> str:
    found = cluster.kubectl("get", "lease", name, "-n", namespace, "-o", "json", check=False)
    if found.returncode != 0:
        return ""
    holder: str = json.loads(found.stdout).get("spec", {}).get("holderIdentity") or ""
    return holder


def get(cluster: Cluster, kind: str, name: str, namespace: str) -> dict[str, Any]:
    found = cluster.kubectl("get", kind, name, "-n", namespace, "-o", "json", check=False)
    return json.loads(found.stdout) if found.returncode == 0 else {}


def route_weights(route: dict[str, Any]) -> dict[str, int]:
    rules = route.get("spec", {}).get("rules") or [{}]
    return {ref["name"]: int(ref.get("weight", 1)) for ref in rules[0].get("backendRefs") or []}


def test_flagger_takes_its_lease_initialises_a_canary_and_shifts_httproute_weight(
    cluster: Cluster, peer_crds: None, model_configs: str, tmp_path: Path
) -> None:
    built(peers.FLAGGER)
    namespace = model_configs
    assert cluster.prometheus_url, "devstack runs no Prometheus"
    flagger = peers.flagger_process(cluster.kubeconfig, namespace, cluster.prometheus_url, tmp_path)
    t0 = time.monotonic()
    with started(flagger):
        holder = wait_for(
            lambda: lease_holder(cluster, namespace, "flagger-leader-election"), 30, message="Flagger's Lease"
        )
        print(f"flagger healthy and leading ({holder}) after {time.monotonic() - t0:.1f} s", flush=True)
        analysis = {"interval": "2s", "threshold": 2, "maxWeight": 50, "stepWeight": 10}
        cluster.apply(peers.flagger_objects(MODEL, MODEL, 1, analysis), namespace=namespace)

        def phase() -> str:
            return str(get(cluster, "canary", MODEL, namespace).get("status", {}).get("phase", ""))

        wait_for(lambda: phase() == "Initialized", 90, interval=0.5, message="Canary Initialized")
        print(f"canary initialised after {time.monotonic() - t0:.1f} s", flush=True)
        primary = get(cluster, "deployment", f"{MODEL}-primary", namespace)
        assert primary["status"].get("readyReplicas") == 1, primary["status"]
        route = get(cluster, "httproute", MODEL, namespace)
        assert route_weights(route) == {f"{MODEL}-primary": 100, f"{MODEL}-canary": 0}, route["spec"]
        assert route["spec"]["parentRefs"][0]["name"] == "devstack"

        # A new model version: Flagger starts the canary and moves weight to it through the HTTPRoute.
        patch = json.dumps(peers.set_version_patch(MODEL, 3))
        cluster.kubectl("patch", "deployment", MODEL, "-n", namespace, "--type=strategic", "-p", patch)

        def shifted() -> dict[str, int] | None:
            weights = route_weights(get(cluster, "httproute", MODEL, namespace))
            return weights if weights.get(f"{MODEL}-canary", 0) >= 10 else None

        weights = wait_for(shifted, 90, interval=0.5, message="canary weight on the HTTPRoute")
        print(f"canary weight {weights} after {time.monotonic() - t0:.1f} s", flush=True)
        assert sum(weights.values()) == 100
        assert phase() in ("Progressing", "Promoting", "Finalising", "Succeeded"), phase()
        canary_pods = cluster.get("pods", namespace=namespace, selector=f"app={MODEL},model-version=3")
        assert canary_pods, "no v3 pod"


def test_argo_rollouts_takes_its_lease_and_sets_traefik_weights(
    cluster: Cluster, peer_crds: None, model_configs: str, tmp_path: Path
) -> None:
    built(peers.ARGO_ROLLOUTS)
    namespace = model_configs
    traefik, _address = peers.traefik_crd_process(cluster.kubeconfig, namespace, tmp_path)
    argo = peers.argo_rollouts_process(cluster.kubeconfig, namespace, tmp_path)
    t0 = time.monotonic()
    with started(traefik), started(argo):
        holder = wait_for(
            lambda: lease_holder(cluster, namespace, "argo-rollouts-controller-lock"),
            30,
            message="Argo Rollouts' Lease",
        )
        print(f"argo rollouts healthy and leading ({holder}) after {time.monotonic() - t0:.1f} s", flush=True)
        steps = [{"setWeight": 20}, {"pause": {}}]
        cluster.apply(peers.argo_objects(MODEL, MODEL, 1, steps), namespace=namespace)

        def rollout() -> dict[str, Any]:
            return get(cluster, "rollout", MODEL, namespace)

        wait_for(lambda: rollout().get("status", {}).get("phase") == "Healthy", 90, interval=0.5, message="Healthy")
        print(f"rollout healthy after {time.monotonic() - t0:.1f} s", flush=True)

        patch = json.dumps(peers.set_version_patch(MODEL, 3))
        cluster.kubectl("patch", "rollout", MODEL, "-n", namespace, "--type=merge", "-p", patch)

        def weights() -> dict[str, int] | None:
            service = get(cluster, "traefikservice", f"{MODEL}-weighted", namespace)
            found = {s["name"]: int(s["weight"]) for s in service["spec"]["weighted"]["services"]}
            return found if found.get(f"{MODEL}-canary") == 20 else None

        found = wait_for(weights, 90, interval=0.5, message="canary weight 20 on the TraefikService")
        assert found == {f"{MODEL}-stable": 80, f"{MODEL}-canary": 20}
        wait_for(lambda: rollout().get("status", {}).get("phase") == "Paused", 30, interval=0.5, message="Paused")
        print(f"traefik weights {found} after {time.monotonic() - t0:.1f} s", flush=True)
        canary = get(cluster, "service", f"{MODEL}-canary", namespace)
        assert "rollouts-pod-template-hash" in canary["spec"]["selector"], canary["spec"]
