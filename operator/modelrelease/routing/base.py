"""The one small interface every traffic router implements.

A router turns "this much traffic (or these users, or a mirrored copy) to
the candidate" into objects of one data plane, and reads back what that data
plane actually does, so status can show the weight achieved rather than the
weight asked for.  The engine never sees which router is in use.

Why a separate ``plan`` step: a router may not be able to do exactly what a
stage asks (the replicas router can neither mirror nor match headers, and it
splits by whole pods), and the handler needs to know before it sizes the
candidate's Deployment and before it tells the user.  The plan says what the
router will really do and, in ``limitation``, what it cannot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class ReleaseTarget:
    """Which release and which versions a route is about."""

    namespace: str
    release: str
    stable_version: int
    candidate_version: int | None
    stable_replicas: int
    owner_uid: str = ""


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
    splits by pods (None: any capacity will do); ``limitation`` is non-empty
    when the data plane will not do what was asked, in words for an event.
    """

    request: RouteRequest
    weight: int
    candidate_replicas: int | None = None
    limitation: str = ""


@dataclass(frozen=True)
class RouteState:
    """What the data plane does now, as far as the router can observe it.

    ``reached`` is the router's verdict that the plan is in effect (for a
    router that splits by pods: every pod it needs is ready).
    """

    weight: int
    mirror: int = 0
    match_applied: bool = False
    reached: bool = False
    message: str = ""


class Router(Protocol):
    name: str
    supports_mirror: bool
    supports_match: bool

    def plan(self, target: ReleaseTarget, request: RouteRequest) -> RoutePlan:
        """What the router will do for ``request``; pure."""
        ...

    async def apply(self, target: ReleaseTarget, plan: RoutePlan) -> None:
        """Make the data plane do what ``plan`` says; idempotent."""
        ...

    async def observe(self, target: ReleaseTarget, plan: RoutePlan) -> RouteState:
        """Read back what the data plane does now, and whether ``plan`` is in effect."""
        ...
