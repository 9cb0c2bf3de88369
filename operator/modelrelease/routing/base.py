"""The one small interface every traffic router implements.

A router turns "this much traffic (or these users, or a mirrored copy) to
the candidate" into objects of one data plane, and reads back what that data
plane actually does, so status can show the weight achieved rather than the
weight asked for.  The engine never sees which router is in use.

Why a separate ``plan`` step: the handler needs to know, before it sizes the
Deployments, how many pods each version needs (the replicas router splits
by whole pods and may scale the stable version up for a small weight; a mesh
router needs only enough capacity).  What a router cannot do at all is
refused at admission (``api.spec``), so a plan never degrades a stage.

Why ``RouteState.problem``: a router that edits a user's object (an
HTTPRoute, a VirtualService) cannot act while that object is missing,
malformed or not accepted by its data plane.  It then moves no traffic and
says why; the handler turns that into a ``RouteReady=False`` condition and an
event, and the stage waits (its weight is never reported as reached).

Why ``release``: a router that edits a user's object must put it back when
the release is deleted or moves to another router (the handler's finalizer
calls it), even when the object is gone by then.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from modelrelease.api.spec import ModelReleaseSpec


@dataclass(frozen=True)
class ReleaseTarget:
    """Which release and which versions a route is about."""

    namespace: str
    release: str
    stable_version: int
    candidate_version: int | None
    stable_replicas: int
    owner_uid: str = ""
    route_name: str = ""
    """The user's object the router edits (HTTPRoute, VirtualService); empty for the replicas router."""
    retiring_version: int | None = None
    """The previous stable while it still serves users beside the new one (a handover), else None."""


@dataclass(frozen=True)
class RouteRequest:
    """What the engine asks for: percent to the candidate, optional cohort, optional mirror."""

    weight: int = 0
    mirror: int = 0
    match: tuple[dict[str, str], ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class RoutePlan:
    """How the router will serve a request.

    ``weight`` is the share of users the router aims to send to the
    candidate; ``candidate_replicas`` the pods that takes, when the router
    splits by pods (None: any capacity will do); ``stable_replicas`` the
    stable version's pods while the plan is in effect (None: the spec's).
    """

    request: RouteRequest
    weight: int
    candidate_replicas: int | None = None
    stable_replicas: int | None = None


@dataclass(frozen=True)
class RouteState:
    """What the data plane does now, as far as the router can observe it.

    ``reached`` is the router's verdict that the plan is in effect (for a
    router that splits by pods: every pod it needs is ready).  ``problem``
    is non-empty when the router cannot act at all (its object is missing,
    malformed or not accepted), in words for a condition and an event;
    ``reason`` is that condition's reason.
    """

    weight: int
    mirror: int = 0
    match_applied: bool = False
    reached: bool = False
    message: str = ""
    problem: str = ""
    reason: str = ""


@dataclass(frozen=True)
class ManagedRoute:
    """A user's object a router edited for a release: which router, which object (to put back later)."""

    router: str
    name: str


class Router(Protocol):
    name: str

    def route_of(self, spec: ModelReleaseSpec) -> str:
        """The name of the user's object this router edits for ``spec`` ("" when it edits none)."""
        ...

    def plan(self, target: ReleaseTarget, request: RouteRequest) -> RoutePlan:
        """What the router will do for ``request``; pure."""
        ...

    async def apply(self, target: ReleaseTarget, plan: RoutePlan) -> None:
        """Make the data plane do what ``plan`` says; idempotent.  Writes nothing while ``observe`` has a problem."""
        ...

    async def observe(self, target: ReleaseTarget, plan: RoutePlan) -> RouteState:
        """Read back what the data plane does now, and whether ``plan`` is in effect."""
        ...

    async def release(self, namespace: str, release: str, route_name: str) -> None:
        """Put the user's object back: 100% to stable, the router's own rules removed; a missing object is fine."""
        ...
