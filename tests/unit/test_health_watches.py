"""``/healthz`` stays 503 until kopf has reached the API server itself and watches ModelReleases."""

from __future__ import annotations

import kopf
from kopf._cogs.structs.references import Insights

from modelrelease import GROUP, PLURAL, VERSION
from modelrelease.runner import watching_releases

RELEASES = kopf.Resource(GROUP, VERSION, PLURAL)
DEPLOYMENTS = kopf.Resource("apps", "v1", "deployments")


def test_not_watching_before_kopfs_discovery_succeeded() -> None:
    insights = Insights()
    insights.watched_resources.add(RELEASES)
    assert not watching_releases(insights)


def test_not_watching_when_the_crd_is_not_served() -> None:
    insights = Insights()
    insights.ready_resources.set()
    insights.watched_resources.add(DEPLOYMENTS)
    assert not watching_releases(insights)


def test_watching_once_discovered_and_releases_are_watched() -> None:
    insights = Insights()
    insights.ready_resources.set()
    insights.watched_resources.update({DEPLOYMENTS, RELEASES})
    assert watching_releases(insights)
