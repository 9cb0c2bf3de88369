"""The watch cache's store and the apply-skip rule: pure parts of kube.cache and kube.client."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from kubernetes_asyncio import client

from modelrelease.kube.cache import ObjectCache, Store, slim
from modelrelease.kube.client import APPLIED_HASH, holds, up_to_date, with_applied_hash
from modelrelease.kube.manifests import LABEL_RELEASE, LABEL_VERSION


def _pod(namespace: str, name: str, release: str | None, version: str = "1", rv: str = "1") -> dict[str, Any]:
    labels = {LABEL_VERSION: version, **({LABEL_RELEASE: release} if release else {})}
    return {
        "metadata": {
            "namespace": namespace,
            "name": name,
            "labels": labels,
            "resourceVersion": rv,
            "managedFields": [
                {"manager": "kube-controller-manager", "operation": "Update", "fieldsV1": {"f:spec": {}}},
                {"manager": "modelrelease-operator", "operation": "Apply", "fieldsV1": {"f:spec": {"f:replicas": {}}}},
            ],
        },
        "status": {"podIP": "127.255.128.9"},
    }


def test_a_store_selects_by_release_and_version_and_forgets_deleted_objects() -> None:
    store = Store()
    store.put(_pod("a", "p1", "digits", "1"))
    store.put(_pod("a", "p2", "digits", "2"))
    store.put(_pod("a", "p3", "other", "1"))
    store.put(_pod("b", "p4", "digits", "1"))
    assert [p["metadata"]["name"] for p in store.select("a", {LABEL_RELEASE: "digits"})] == ["p1", "p2"]
    selector = {LABEL_RELEASE: "digits", LABEL_VERSION: "2"}
    assert [p["metadata"]["name"] for p in store.select("a", selector)] == ["p2"]
    store.remove(("a", "p2"))
    assert store.select("a", selector) == []
    assert [p["metadata"]["name"] for p in store.select("b", {LABEL_RELEASE: "digits"})] == ["p4"]


def test_a_relabelled_object_moves_between_releases_in_the_index() -> None:
    store = Store()
    store.put(_pod("a", "p1", "digits"))
    store.put(_pod("a", "p1", "other", rv="2"))
    assert store.select("a", {LABEL_RELEASE: "digits"}) == []
    assert len(store.select("a", {LABEL_RELEASE: "other"})) == 1


def test_a_relist_drops_what_was_deleted_meanwhile_in_its_namespace_only() -> None:
    store = Store()
    for name in ("p1", "p2"):
        store.put(_pod("a", name, "digits"))
    store.put(_pod("b", "p3", "digits"))
    removed = store.replace("a", [_pod("a", "p1", "digits", rv="5")])
    assert [r["metadata"]["name"] for r in removed] == ["p2"]
    assert sorted(store.objects) == [("a", "p1"), ("b", "p3")]
    assert store.objects[("a", "p1")]["metadata"]["resourceVersion"] == "5"


def test_only_the_operators_managed_fields_are_kept() -> None:
    kept = slim(_pod("a", "p1", "digits"))["metadata"]["managedFields"]
    assert [entry["manager"] for entry in kept] == ["modelrelease-operator"]


def test_cached_objects_come_back_as_the_typed_models_an_api_read_returns() -> None:
    asyncio.run(_typed_reads())


async def _typed_reads() -> None:
    api = client.ApiClient(client.Configuration())
    cache = ObjectCache(api, namespaces=("a",))
    raw = _pod("a", "p1", "digits")
    raw["metadata"]["creationTimestamp"] = "2026-01-02T03:04:05Z"
    cache._stores["Pod"].put(raw)
    cache._stores["Pod"].ready.add("a")
    assert cache.ready("Pod", "a") and not cache.ready("Pod", "b") and not cache.ready("Deployment", "a")
    pod = cache.get("Pod", "a", "p1")
    assert isinstance(pod, client.V1Pod)
    assert pod.status.pod_ip == "127.255.128.9"
    assert pod.metadata.creation_timestamp.year == 2026
    assert [p.metadata.name for p in cache.select("Pod", "a", {LABEL_RELEASE: "digits"})] == ["p1"]
    await api.close()


SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "digits", "namespace": "a", "labels": {LABEL_RELEASE: "digits"}},
    "spec": {"selector": {LABEL_RELEASE: "digits"}, "ports": [{"name": "grpc", "port": 8500, "targetPort": 8500}]},
}


def _live(manifest: dict[str, Any]) -> dict[str, Any]:
    """What the API server stores after an apply: the fields stated, plus defaults and status."""
    live = {k: v for k, v in manifest.items() if k not in ("apiVersion", "kind")}
    spec = dict(live["spec"])
    spec["ports"] = [{**spec["ports"][0], "protocol": "TCP"}]
    spec["clusterIP"] = "10.0.0.7"
    return {**live, "metadata": {**live["metadata"], "resourceVersion": "9", "uid": "u"}, "spec": spec, "status": {}}


def test_an_applied_object_that_still_holds_every_stated_field_is_up_to_date() -> None:
    stamped = with_applied_hash(SERVICE)
    assert up_to_date(stamped, _live(stamped))


def test_a_field_someone_else_changed_makes_the_object_out_of_date() -> None:
    stamped = with_applied_hash(SERVICE)
    live = _live(stamped)
    live["spec"]["selector"] = {LABEL_RELEASE: "digits", LABEL_VERSION: "1"}
    assert holds({"a": 1}, {"a": 1, "b": 2}) and not holds({"a": {"b": 1}}, {"a": {"b": 2}})
    assert up_to_date(stamped, _live(stamped))
    assert not up_to_date(stamped, {**live, "spec": {**live["spec"], "selector": {}}})


def test_a_field_the_operator_no_longer_states_changes_the_hash_so_it_is_applied() -> None:
    before = with_applied_hash({**SERVICE, "metadata": {**SERVICE["metadata"], "labels": {"extra": "x"}}})
    after = with_applied_hash(SERVICE)
    assert before["metadata"]["annotations"][APPLIED_HASH] != after["metadata"]["annotations"][APPLIED_HASH]
    assert not up_to_date(after, _live(before))
    assert not up_to_date(after, None)


def test_the_hash_ignores_a_stale_hash_annotation_in_the_manifest() -> None:
    once = with_applied_hash(SERVICE)
    assert with_applied_hash(once) == once


def test_lists_must_match_item_by_item_and_empty_values_match_absent_fields() -> None:
    assert holds({"args": [], "env": {}}, {})
    assert not holds({"ports": [{"port": 1}]}, {"ports": [{"port": 1}, {"port": 2}]})
    assert not holds({"flag": True}, {"flag": 1})


def test_resource_quantities_the_api_server_rewrote_still_hold() -> None:
    """``0.5`` is stored as ``500m``, ``1024Mi`` as ``1Gi``: neither is a change to re-apply every pass."""
    wanted = {"resources": {"requests": {"cpu": "0.5", "memory": "1024Mi"}, "limits": {"cpu": 2}}}
    stored = {"resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "2"}}}

    assert holds(wanted, stored)
    assert not holds(wanted, {"resources": {"requests": {"cpu": "501m", "memory": "1Gi"}, "limits": {"cpu": "2"}}})


def test_only_values_under_requests_or_limits_are_compared_as_quantities() -> None:
    assert not holds({"labels": {"size": "0.5"}}, {"labels": {"size": "500m"}})
    assert not holds({"resources": {"requests": {"cpu": "half"}}}, {"resources": {"requests": {"cpu": "500m"}}})


def test_quantities_parse_as_the_api_server_reads_them() -> None:
    from decimal import Decimal

    from modelrelease.kube.quantity import parse_quantity

    assert parse_quantity("500m") == parse_quantity("0.5") == Decimal("0.5")
    assert parse_quantity("1Gi") == 2**30 and parse_quantity("1G") == 10**9 and parse_quantity("2k") == 2000
    assert parse_quantity("1e3") == 1000
    with pytest.raises(ValueError, match="not a quantity"):
        parse_quantity("Mi")
