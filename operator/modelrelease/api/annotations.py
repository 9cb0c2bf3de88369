"""The request annotations: how people (and the ``modelrelease`` CLI) steer a rollout without editing spec.

Why annotations: GitOps tools compare ``spec`` with Git, so a manual act
written there would show as drift (or be reverted).  Each request is an
annotation ``modelrelease.io/<kind>``; the operator consumes it (removes it)
and records the act in ``status.history``.  The operator and the CLI both
read these names from here, so they cannot disagree.
"""

from __future__ import annotations

from typing import Literal

from modelrelease import GROUP

RequestKind = Literal["approve", "promote", "abort", "retry", "pause", "resume"]

ANNOTATION_PREFIX = f"{GROUP}/"
REQUEST_KINDS: tuple[RequestKind, ...] = ("approve", "promote", "abort", "retry", "pause", "resume")
"""In the order a pass handles them, so a pass is reproducible."""


def request_annotation(kind: RequestKind) -> str:
    """``modelrelease.io/<kind>``; approve's value names the stage, the others' value is ignored."""
    return f"{ANNOTATION_PREFIX}{kind}"
