"""The pod runner's pure parts, held to the kubelet's rules."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from devstack.podrunner import images
from devstack.podrunner.backoff import CrashBackoff
from devstack.podrunner.env import ContainerConfigError, build_env
from devstack.podrunner.expansion import expand
from devstack.podrunner.ipam import IPAllocator, SubnetClaim
from devstack.podrunner.probes import (
    ProbeSpecError,
    ProbeTracker,
    decode_health_status,
    encode_health_request,
    parse_probe,
)
from devstack.podrunner.status import pod_phase

# -- $(VAR) expansion ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$(A)-$(B)", "a-b"),
        ("$(MISSING)", "$(MISSING)"),
        ("$$(A)", "$(A)"),
        ("$$$(A)", "$a"),
        ("$(A", "$(A"),
        ("cost $5", "cost $5"),
        ("trailing $", "trailing $"),
        ("", ""),
        ("$()", "$()"),
    ],
)
def test_expansion_follows_the_kubelet_rules(text: str, expected: str) -> None:
    assert expand(text, {"A": "a", "B": "b"}) == expected


def test_env_values_see_only_variables_defined_before_them() -> None:
    pod = {"metadata": {"name": "p", "namespace": "ns", "uid": "u"}, "spec": {"nodeName": "n"}}
    container = {
        "name": "c",
        "env": [
            {"name": "EARLY", "value": "$(LATE)"},
            {"name": "LATE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "BOTH", "value": "$(LATE).$(NS)"},
            {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        ],
    }

    async def no_sources(kind: str, namespace: str, name: str) -> dict[str, str] | None:
        return None

    env = asyncio.run(build_env(pod, container, pod_ip="127.1.0.2", host_ip="127.0.0.1", read=no_sources))
    assert env["EARLY"] == "$(LATE)"
    assert env["BOTH"] == "p.$(NS)"
    assert env["IP"] == "127.1.0.2"


def test_env_from_missing_configmap_fails_unless_optional() -> None:
    pod = {"metadata": {"name": "p", "namespace": "ns", "uid": "u"}, "spec": {}}

    async def reader(kind: str, namespace: str, name: str) -> dict[str, str] | None:
        return {"key": "v", "bad key": "skipped"} if name == "present" else None

    optional = {"name": "c", "envFrom": [{"configMapRef": {"name": "absent", "optional": True}}]}
    assert asyncio.run(build_env(pod, optional, pod_ip="", host_ip="", read=reader)) == {}
    prefixed = {"name": "c", "envFrom": [{"prefix": "P_", "configMapRef": {"name": "present"}}]}
    assert asyncio.run(build_env(pod, prefixed, pod_ip="", host_ip="", read=reader)) == {"P_key": "v"}
    required = {"name": "c", "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "k"}}}]}
    with pytest.raises(ContainerConfigError, match='secret "absent" not found'):
        asyncio.run(build_env(pod, required, pod_ip="", host_ip="", read=reader))


# -- IP allocation ---------------------------------------------------------


def test_ips_are_unique_loopback_addresses_never_127_0_0_1(tmp_path: Path) -> None:
    allocator = IPAllocator(tmp_path / "ipam.json", subnet=7)
    ips = [allocator.allocate(f"uid-{n}") for n in range(600)]
    assert len(set(ips)) == 600
    assert all(ip.startswith("127.7.") and not ip.endswith((".0", ".1", ".255")) for ip in ips)
    assert "127.0.0.1" not in ips
    assert allocator.allocate("uid-3") == ips[3]


def test_a_restarted_allocator_keeps_live_ips_and_does_not_reuse_a_released_one_at_once(tmp_path: Path) -> None:
    first = IPAllocator(tmp_path / "ipam.json", subnet=9)
    a, b = first.allocate("a"), first.allocate("b")
    first.release("a")
    again = IPAllocator(tmp_path / "ipam.json", subnet=9)
    assert again.allocate("b") == b
    fresh = again.allocate("c")
    assert fresh not in (a, b)
    again.retain({"c"})
    assert again.allocations() == {"c": fresh}
    assert IPAllocator.saved_subnet(tmp_path / "ipam.json") == 9


def test_two_runners_never_claim_the_same_subnet(tmp_path: Path) -> None:
    first = SubnetClaim.acquire(tmp_path, preferred=5)
    second = SubnetClaim.acquire(tmp_path, preferred=5)
    try:
        assert first.subnet == 5
        assert second.subnet != 5
    finally:
        first.close()
        second.close()
    reclaimed = SubnetClaim.acquire(tmp_path, preferred=5)
    assert reclaimed.subnet == 5
    reclaimed.close()


# -- crash-loop back-off ---------------------------------------------------


def test_backoff_restarts_at_once_then_doubles_from_ten_seconds_to_five_minutes() -> None:
    backoff = CrashBackoff()
    now = 1000.0
    waits = []
    for _ in range(9):
        wait = backoff.delay_after_crash(finished_at=now, now=now)
        waits.append(wait)
        now += wait + 1.0  # the container runs for a second, then crashes again
    assert waits == [0.0, 10.0, 20.0, 40.0, 80.0, 160.0, 300.0, 300.0, 300.0]


def test_backoff_is_forgotten_after_the_container_ran_twice_the_cap() -> None:
    backoff = CrashBackoff()
    backoff.delay_after_crash(finished_at=0.0, now=0.0)
    assert backoff.delay_after_crash(finished_at=1.0, now=1.0) == 10.0
    assert backoff.delay_after_crash(finished_at=1000.0, now=1000.0) == 0.0


# -- probes ----------------------------------------------------------------


def test_probe_parsing_applies_api_defaults_and_resolves_named_ports() -> None:
    spec = parse_probe({"httpGet": {"path": "/ready", "port": "http"}}, [{"name": "http", "containerPort": 8501}])
    assert (spec.kind, spec.port, spec.path, spec.scheme) == ("httpGet", 8501, "/ready", "HTTP")
    assert (spec.initial_delay, spec.period, spec.timeout, spec.success_threshold, spec.failure_threshold) == (
        0.0,
        10.0,
        1.0,
        1,
        3,
    )
    grpc = parse_probe({"grpc": {"port": 8500}, "periodSeconds": 2, "failureThreshold": 1})
    assert (grpc.kind, grpc.port, grpc.period, grpc.failure_threshold) == ("grpc", 8500, 2.0, 1)
    assert parse_probe({"exec": {"command": ["true"]}}).command == ("true",)
    with pytest.raises(ProbeSpecError, match="does not declare"):
        parse_probe({"tcpSocket": {"port": "missing"}}, [])
    with pytest.raises(ProbeSpecError, match="no handler"):
        parse_probe({"periodSeconds": 1})


def test_readiness_flips_only_after_threshold_consecutive_results() -> None:
    spec = parse_probe({"tcpSocket": {"port": 1}, "successThreshold": 2, "failureThreshold": 3})
    tracker = ProbeTracker.for_role("readiness", spec)
    assert tracker.result is False
    assert [tracker.observe(ok) for ok in (True, False, True, True)] == [False, False, False, True]
    assert tracker.result is True
    assert [tracker.observe(ok) for ok in (False, False, True, False, False, False)] == [False] * 5 + [True]
    assert tracker.result is False


def test_liveness_starts_passing_and_startup_unknown() -> None:
    spec = parse_probe({"tcpSocket": {"port": 1}, "failureThreshold": 1})
    assert ProbeTracker.for_role("liveness", spec).result is True
    startup = ProbeTracker.for_role("startup", spec)
    assert startup.result is None
    assert startup.observe(False) is True and startup.result is False


def test_grpc_health_messages_round_trip_the_wire_format() -> None:
    assert encode_health_request("") == b""
    assert encode_health_request("tensorflow.serving") == b"\x0a\x12tensorflow.serving"
    assert decode_health_status(b"\x08\x01") == 1
    assert decode_health_status(b"\x08\x02") == 2
    assert decode_health_status(b"") == 0


# -- images and phase ------------------------------------------------------


def test_image_table_maps_known_images_and_refuses_unknown_ones() -> None:
    launch = images.Launch(pod_ip="127.1.0.9", command=[], args=["--port=8500", "--model_name=digits"])
    argv = images.command_for("docker.io/tensorflow/serving:2.18.0", launch)
    assert argv is not None
    assert argv[1:5] == ["-m", "devstack.modelserver", "--bind_address=127.1.0.9", "--port=8500"]
    script = images.Launch(pod_ip="127.1.0.9", command=["python3", "-c", "print(1)"], args=[])
    python_argv = images.command_for("devstack/python", script)
    assert python_argv is not None and python_argv[1:] == ["-c", "print(1)"]
    assert images.command_for("example.com/unknown:1", launch) is None


@pytest.mark.parametrize(
    ("policy", "states", "phase"),
    [
        ("Always", [{"state": {"waiting": {"reason": "ContainerCreating"}}}], "Pending"),
        ("Always", [{"state": {"running": {}}}], "Running"),
        (
            "Always",
            [{"state": {"waiting": {"reason": "CrashLoopBackOff"}}, "lastState": {"terminated": {"exitCode": 1}}}],
            "Running",
        ),
        ("Never", [{"state": {"terminated": {"exitCode": 0}}}], "Succeeded"),
        ("Never", [{"state": {"terminated": {"exitCode": 1}}}], "Failed"),
        ("OnFailure", [{"state": {"terminated": {"exitCode": 1}}}], "Running"),
    ],
)
def test_pod_phase_follows_the_kubelet(policy: str, states: list[dict[str, object]], phase: str) -> None:
    assert pod_phase(policy, True, False, states) == phase
