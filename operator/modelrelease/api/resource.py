"""The whole ModelRelease object, as read from and written to the API server."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import Field, ValidationError, field_validator

from modelrelease import GROUP, KIND, VERSION
from modelrelease.api.cel import cel, literal
from modelrelease.api.problems import InvalidRelease, explain, problem
from modelrelease.api.spec import ApiModel, ModelReleaseSpec
from modelrelease.api.status import ModelReleaseStatus

# The operator names Services <name>, <name>-stable and <name>-canary and
# Deployments <name>-v<version>. Services must be DNS-1035 labels (63
# characters, starting with a letter), so the release name must be one too,
# with room left for the longest suffix the operator appends.
RELEASE_NAME_MAX = 50
RELEASE_NAME_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
RELEASE_NAME_RULE = cel(
    f"self.metadata.name.size() <= {RELEASE_NAME_MAX} && self.metadata.name.matches({literal(RELEASE_NAME_PATTERN)})",
    f"metadata.name must be a DNS-1035 label of at most {RELEASE_NAME_MAX} characters (lower-case letters, digits "
    "and '-', starting with a letter): the operator derives Service and Deployment names from it",
)


class ModelRelease(ApiModel):
    api_version: str = Field(default=f"{GROUP}/{VERSION}")
    kind: str = Field(default=KIND)
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: ModelReleaseSpec
    status: ModelReleaseStatus = Field(default_factory=ModelReleaseStatus)

    @field_validator("metadata")
    @classmethod
    def _name_fits_derived_names(cls, metadata: dict[str, Any]) -> dict[str, Any]:
        name = metadata.get("name")
        if name is None:
            return metadata
        if not isinstance(name, str) or len(name) > RELEASE_NAME_MAX or not re.fullmatch(RELEASE_NAME_PATTERN, name):
            raise problem(
                "name",
                f"is {name!r}: must be a DNS-1035 label of at most {RELEASE_NAME_MAX} characters (lower-case "
                "letters, digits and '-', starting with a letter), because Service and Deployment names derive from it",
            )
        return metadata


def parse_spec(obj: Mapping[str, Any]) -> ModelReleaseSpec:
    """Parse a spec as the user wrote it; raise InvalidRelease with one line per problem (``spec.<field> ...``)."""
    try:
        return ModelReleaseSpec.model_validate(obj)
    except ValidationError as error:
        raise InvalidRelease(explain(error, root="spec")) from error


def parse_release(obj: Mapping[str, Any]) -> ModelRelease:
    """Parse a whole object as read from the API server; problems are named from the object's root."""
    try:
        return ModelRelease.model_validate(obj)
    except ValidationError as error:
        raise InvalidRelease(explain(error, root="")) from error
