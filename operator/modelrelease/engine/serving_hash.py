"""A fingerprint of what the candidate's pods are built from.

Replicas are left out: scaling the stable version is not a new pod template,
so it must not restart a candidate's analysis.
"""

from __future__ import annotations

import hashlib
import json

from modelrelease.api.spec import ServingSpec


def serving_hash(serving: ServingSpec) -> str:
    template = serving.model_dump(mode="json", exclude={"replicas"})
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:16]
