"""Traffic generator and data-plane stand-in: labelled requests, routed as the cluster's router objects say.

``python -m devstack.traffic`` runs it from a shell; ``running(...)`` runs it
inside a test.  What it exports is the metric contract in docs/metrics.md.
"""

from __future__ import annotations

from devstack.traffic.endpoints import Endpoint, NonLoopbackAddress, StaticEndpoints
from devstack.traffic.generator import TrafficConfig, TrafficGenerator, TrafficStats, running
from devstack.traffic.routing import (
    Decision,
    HTTPRouteResolver,
    NoRoute,
    Resolver,
    ServiceResolver,
    VirtualServiceResolver,
)

__all__ = [
    "Decision",
    "Endpoint",
    "HTTPRouteResolver",
    "NoRoute",
    "NonLoopbackAddress",
    "Resolver",
    "ServiceResolver",
    "StaticEndpoints",
    "TrafficConfig",
    "TrafficGenerator",
    "TrafficStats",
    "VirtualServiceResolver",
    "running",
]
