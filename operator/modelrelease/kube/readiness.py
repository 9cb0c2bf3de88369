"""How many pods of a Deployment's *current* template are ready.

Why not ``status.readyReplicas``: right after a template change the old
pods are still ready, and a candidate must not be judged (or counted as
traffic) on pods that run the previous template.  Until the Deployment
controller has seen the latest generation nothing is known to be current,
so the count is 0; after that it is ``min(readyReplicas, updatedReplicas)``.
"""

from __future__ import annotations

from typing import Any


def current_ready(deployment: Any) -> int:
    """Ready pods of the current template of a kubernetes_asyncio ``V1Deployment`` (None counts as absent)."""
    if deployment is None or deployment.status is None:
        return 0
    status = deployment.status
    if (status.observed_generation or 0) < (deployment.metadata.generation or 0):
        return 0
    return min(int(status.ready_replicas or 0), int(status.updated_replicas or 0))


def desired_replicas(deployment: Any) -> int:
    if deployment is None or deployment.spec is None:
        return 0
    return int(deployment.spec.replicas if deployment.spec.replicas is not None else 1)
