"""Constrained strings shared by the spec: names, references, images, paths.

Each type checks its value in Python with a message that says what is
allowed, and carries the same ``pattern``/``maxLength`` into the generated
CRD, so the API server and the operator refuse exactly the same strings.
The bounds also matter to the API server for another reason: CEL rules are
cost-checked against ``maxLength``/``maxItems``, and an unbounded string makes
a rule too expensive to be accepted.

Patterns use the subset of syntax that Python's ``re`` and Go's RE2 read the
same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Annotated, Any

from modelrelease.api.constrained import ConstrainedText


@dataclass(frozen=True)
class StringRule(ConstrainedText):
    """``Annotated`` metadata: check a str against a pattern and a length; ``allowed`` finishes "must be ..."."""

    pattern: str
    max_length: int
    allowed: str
    compiled: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "compiled", re.compile(self.pattern))

    def check(self, value: str) -> str:
        if len(value) > self.max_length:
            raise ValueError(f"is {len(value)} characters long; at most {self.max_length} are allowed")
        if not self.compiled.fullmatch(value):
            raise ValueError(f"{value!r} is not allowed: must be {self.allowed}")
        return value

    def schema_extra(self) -> dict[str, Any]:
        return {"pattern": self.pattern, "maxLength": self.max_length}


DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# RFC 7230 token, as Gateway API's HTTPHeaderName spells it.
HEADER_NAME_PATTERN = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$"
HEADER_NAME_MAX = 256
# One visible token: no space and no control character (C0, DEL, C1).  Spelled
# with \x escapes, which Python's re and RE2 read alike; [^\s] is not: Python's
# \s also takes Unicode spaces, so a value ending in a no-break space passed
# the API server and was then refused by the operator.
VISIBLE_TOKEN = r"[^\x00-\x20\x7f-\x9f]"

DnsLabel = Annotated[
    str,
    StringRule(
        DNS_LABEL_PATTERN,
        63,
        "a DNS label: lower-case letters, digits and '-', starting and ending with a letter or digit",
    ),
]
ObjectName = Annotated[
    str,
    StringRule(
        DNS_SUBDOMAIN_PATTERN,
        253,
        "a Kubernetes object name: lower-case letters, digits, '-' and '.', starting and ending with a letter or digit",
    ),
]
HoldAtName = Annotated[
    str, StringRule(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?)?$", 63, "empty or the name of a stage (a DNS label)")
]
# Substituted into PromQL label matchers and TF Serving URLs, so quotes,
# braces and spaces are refused outright rather than escaped.
ModelName = Annotated[
    str,
    StringRule(
        r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", 63, "letters, digits, '_', '.' and '-', starting with a letter or digit"
    ),
]
ClassLabel = Annotated[
    str, StringRule(r"^[A-Za-z0-9_.:-]+$", 63, "a class label of letters, digits, '_', '.', ':' and '-'")
]
# Written into TF Serving's model config file (a protobuf text-format string,
# escaped there as well) and passed as a flag: quotes, backslashes, spaces and
# control characters (C0, DEL, C1) cannot be part of a model path and are
# refused.  The class is spelled with \x escapes, which Python's re and RE2
# read alike (unlike \s, which is Unicode-aware in Python only).
BASE_PATH_PATTERN = r'^(/|[a-z][a-z0-9+.-]*://)[^\x00-\x20\x7f-\x9f"\\]*$'
BasePath = Annotated[
    str,
    StringRule(
        BASE_PATH_PATTERN,
        1024,
        "an absolute path or a URL such as gs://bucket/models/digits, "
        "without spaces, quotes, backslashes or control characters",
    ),
]
Image = Annotated[
    str, StringRule(f"^{VISIBLE_TOKEN}+$", 512, "a container image reference without spaces or control characters")
]
HttpUrl = Annotated[
    str,
    StringRule(f"^https?://{VISIBLE_TOKEN}+$", 512, "an http:// or https:// URL without spaces or control characters"),
]
HeaderName = Annotated[str, StringRule(HEADER_NAME_PATTERN, HEADER_NAME_MAX, "an HTTP header name (an RFC 7230 token)")]
