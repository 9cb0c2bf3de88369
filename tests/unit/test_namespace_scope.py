"""Which namespaces the operator serves, and whether kopf must watch cluster-wide for it."""

from __future__ import annotations

from modelrelease.namespaces import scope_of


def test_no_namespaces_means_every_namespace_cluster_wide() -> None:
    scope = scope_of([])
    assert scope.cluster_wide and scope.kopf_namespaces == []
    assert scope.serves("anything")


def test_exact_names_are_watched_per_namespace_by_kopf() -> None:
    scope = scope_of(["ml", "ml-staging"])
    assert not scope.cluster_wide
    assert scope.kopf_namespaces == ["ml", "ml-staging"]
    assert scope.serves("ml") and not scope.serves("other")


def test_a_glob_is_watched_cluster_wide_and_filtered_by_the_operator() -> None:
    scope = scope_of(["mr-abc-*"])
    assert scope.cluster_wide and scope.kopf_namespaces == []
    assert scope.serves("mr-abc-12345")
    assert not scope.serves("mr-xyz-12345")


def test_an_exclusion_removes_namespaces_a_glob_would_serve() -> None:
    scope = scope_of(["ml-*", "!ml-sandbox*"])
    assert scope.serves("ml-prod")
    assert not scope.serves("ml-sandbox-1")


def test_only_exclusions_serve_everything_else() -> None:
    scope = scope_of(["!kube-*"])
    assert scope.serves("ml") and not scope.serves("kube-system")
