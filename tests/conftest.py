"""Fixtures shared by every test: the devstack cluster, a fresh namespace, logs on failure.

Tests that need the cluster are marked ``@pytest.mark.cluster`` (or ``e2e``).
The cluster comes up once per session (about three seconds once built) or is
reused: the one named by ``MODELRELEASE_KUBECONFIG``, or a devstack already
running in the state directory.  See devstack/testing.py.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Generator, Iterator
from types import FrameType

import pytest

from devstack.testing import Cluster, fresh_namespace, session_cluster


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    """Treat SIGTERM (``timeout pytest ...``, a CI cancel) like Ctrl-C, so session fixtures still stop the devstack."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _interrupt)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    with session_cluster() as handle:
        yield handle


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    with fresh_namespace(cluster, request.node.name) as name:
        request.node.stash[_NAMESPACE] = name
        yield name


_NAMESPACE = pytest.StashKey[str]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport]:
    """On a failed cluster test, attach the namespace's events and the tail of the devstack logs to the report."""
    report: pytest.TestReport = yield
    if report.failed and report.when in ("setup", "call") and "cluster" in getattr(item, "fixturenames", ()):
        handle = item.funcargs.get("cluster") if isinstance(item, pytest.Function) else None
        if isinstance(handle, Cluster):
            namespace = item.stash.get(_NAMESPACE, None)
            if namespace:
                try:
                    events = handle.kubectl("get", "events", "-n", namespace, "--sort-by=.lastTimestamp", check=False)
                    report.sections.append((f"events in {namespace}", events.stdout + events.stderr))
                except Exception as exc:  # the report must not fail because the cluster is gone
                    report.sections.append((f"events in {namespace}", f"unavailable: {exc}"))
            report.sections.append(("devstack logs (tail)", handle.logs()))
    return report
