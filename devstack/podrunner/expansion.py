"""``$(VAR)`` references in env values, command and args, expanded exactly as the kubelet does.

The kubelet's rules (third_party/forked/golang/expansion) are not shell rules:
``$$`` escapes a dollar, an undefined ``$(VAR)`` is left as written, and an
unterminated ``$(`` is copied through.  Manifests written for a real cluster
rely on these quirks, so they are reproduced byte for byte.
"""

from __future__ import annotations

from collections.abc import Mapping


def expand(text: str, variables: Mapping[str, str]) -> str:
    out: list[str] = []
    checkpoint = 0
    cursor = 0
    while cursor < len(text):
        if text[cursor] == "$" and cursor + 1 < len(text):
            out.append(text[checkpoint:cursor])
            read, is_variable, advance = _read_variable_name(text[cursor + 1 :])
            if is_variable:
                out.append(variables.get(read, f"$({read})"))
            else:
                out.append(read)
            cursor += advance
            checkpoint = cursor + 1
        cursor += 1
    out.append(text[checkpoint:])
    return "".join(out)


def _read_variable_name(rest: str) -> tuple[str, bool, int]:
    if rest[0] == "$":
        return "$", False, 1
    if rest[0] == "(":
        closing = rest.find(")", 1)
        if closing >= 0:
            return rest[1:closing], True, closing + 1
        return "$(", False, 1
    return "$" + rest[0], False, 1
