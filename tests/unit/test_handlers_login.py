"""kopf logs in where the kubelet says the API server is, like the leader elector's client does."""

from __future__ import annotations

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
