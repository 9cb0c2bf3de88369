"""One base for the API's constrained strings, so pydantic and the CRD refuse the same values.

Each ``Annotated[str, Marker()]`` in this package checks a value in Python
(``check``, run by pydantic after the plain str validation) and describes the
same constraint to the API server (``schema_extra``: pattern, maxLength, CEL
rules), which lands in the generated CRD.
"""

from __future__ import annotations

from typing import Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema


class ConstrainedText:
    def check(self, value: str) -> str:
        raise NotImplementedError

    def schema_extra(self) -> dict[str, Any]:
        raise NotImplementedError

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema.update(self.schema_extra())
        return json_schema
