"""Read objects as deeply nested as the API server stores them.

Why: ``spec.serving.podTemplate`` and ``spec.serving.resources`` are
free-form, and the API server accepts JSON nested up to 10,000 levels.
Python's default recursion limit (1,000) stops ``json.loads`` at about 995
levels, so one ModelRelease with a podTemplate nested 1,500 deep made kopf's
watch stream raise RecursionError and the whole operator exit, and exit
again on every restart while the object existed: one user could stop every
rollout in the cluster.  Raising the limit lets the decoder, pydantic, the
manifest builders and the API client's serializer walk the deepest object
the API server can hold; the release then meets the ordinary checks.

Python 3.12 also caps C recursion at about 1,500 levels whatever this limit
says, so on 3.12 ``json.loads`` still fails beyond that; run the operator on
3.11 or 3.13+.
"""

from __future__ import annotations

import sys

KUBERNETES_MAX_JSON_DEPTH = 10_000
"""Nesting beyond this the API server refuses to decode ("exceeded max depth")."""

FRAMES_PER_LEVEL = 4
"""Python frames a recursive walk spends per level (deepcopy and comprehensions take two or three)."""


def allow_deepest_objects() -> int:
    """Raise the recursion limit (never lower it) to cover the API server's deepest object; return the limit."""
    needed = FRAMES_PER_LEVEL * KUBERNETES_MAX_JSON_DEPTH + 1_000
    if sys.getrecursionlimit() < needed:
        sys.setrecursionlimit(needed)
    return sys.getrecursionlimit()
