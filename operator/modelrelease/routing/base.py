"""The one small interface every traffic router implements.

A router turns "this much traffic (or these users, or a mirrored copy) to
the candidate" into objects of one data plane, and reads back what that data
plane actually does, so status can show the weight achieved rather than the
weight asked for.  The engine never sees which router is in use.
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


@dataclass(frozen=True)
class RouteRequest:
    """What the engine asks for: percent to the candidate, optional cohort, optional mirror."""

    weight: int = 0
    mirror: int = 0
    match: tuple[dict[str, str], ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class RouteState:
    """What the data plane does now, as far as the router can observe it."""

    weight: int
    mirror: int = 0
    match_applied: bool = False
    message: str = ""


class UnsupportedRoute(ValueError):
    """The router cannot express this request (e.g. mirroring through kube-proxy)."""


class Router(Protocol):
    name: str
    supports_mirror: bool
    supports_match: bool

    async def apply(self, target: ReleaseTarget, request: RouteRequest) -> None:
        """Make the data plane do what ``request`` says; idempotent."""
        ...

    async def observe(self, target: ReleaseTarget) -> RouteState:
        """Read back what the data plane does now."""
        ...
