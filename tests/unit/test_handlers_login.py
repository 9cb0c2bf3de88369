"""In a pod, kopf and the API client log in where the kubelet says the API server is, with the pod's token."""

from __future__ import annotations

from pathlib import Path

from modelrelease.handlers import in_cluster_server


def test_in_cluster_login_uses_the_address_the_kubelet_gives_every_pod() -> None:
    assert in_cluster_server({"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}) == (
        "https://10.96.0.1:443"
    )
    assert in_cluster_server({"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "6443"}) == (
        "https://[fd00::1]:6443"
    )


def test_outside_a_pod_there_is_no_in_cluster_address() -> None:
    assert in_cluster_server({}) is None
    assert in_cluster_server({"KUBERNETES_SERVICE_HOST": "10.96.0.1"}) is None


def test_the_operator_uses_in_cluster_config_only_in_a_pod_with_a_token(tmp_path: Path) -> None:
    from modelrelease.runner import in_cluster

    token = tmp_path / "token"
    pod = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    assert not in_cluster(None, pod, token), "no token mounted: not in a pod, use the kubeconfig"
    token.write_text("t")
    assert in_cluster(None, pod, token)
    assert not in_cluster(tmp_path / "kubeconfig", pod, token), "--kubeconfig wins"
    assert not in_cluster(None, {}, token)
