"""Turn a metric's PromQL with ``{{placeholders}}`` into the query for one version.

Why substitution refuses instead of escaping: a value that needs escaping
(a quote, a brace, a newline) is never a legitimate model, namespace or
version, so refusing is both simpler and safer, and the error tells the user
which value is wrong.  Only the closed set of placeholders is substituted;
anything left that looks like a placeholder is refused too, so a typo such as
``{{verison}}`` fails loudly instead of reaching Prometheus as literal text.
"""

from __future__ import annotations

import re

from modelrelease.analysis.context import TemplateValues
from modelrelease.api.spec import TEMPLATE_PLACEHOLDERS


class TemplateError(ValueError):
    """A query cannot be rendered: an unknown placeholder or a malformed template."""


_LEFTOVER = re.compile(r"\{\{|\}\}")


def render(text: str, values: TemplateValues) -> str:
    substitutions = values.as_dict()
    rendered = text
    for name in TEMPLATE_PLACEHOLDERS:
        rendered = rendered.replace("{{" + name + "}}", substitutions[name])
    leftover = _LEFTOVER.search(rendered)
    if leftover is not None:
        snippet = rendered[max(0, leftover.start() - 10) : leftover.end() + 20]
        allowed = ", ".join("{{" + name + "}}" for name in TEMPLATE_PLACEHOLDERS)
        raise TemplateError(f"unknown or unbalanced placeholder near {snippet!r}: only {allowed} may be used")
    return rendered
