"""The whole ModelRelease object, as read from and written to the API server."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from modelrelease import GROUP, KIND, VERSION
from modelrelease.api.spec import ApiModel, ModelReleaseSpec
from modelrelease.api.status import ModelReleaseStatus


class ModelRelease(ApiModel):
    api_version: str = Field(default=f"{GROUP}/{VERSION}")
    kind: str = Field(default=KIND)
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: ModelReleaseSpec
    status: ModelReleaseStatus = Field(default_factory=ModelReleaseStatus)
