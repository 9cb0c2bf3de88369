"""Which namespaces the operator serves, decided by the operator rather than by kopf's namespace discovery.

Why not hand glob patterns to kopf: kopf then discovers matching namespaces
through a cluster-wide namespace watch and spawns per-namespace watchers,
and a namespace created in the first moments after start-up was measured
here to go unwatched until that stream reconnected 70 s later: its releases
sat untouched.  With a glob the operator therefore watches cluster-wide and
drops events from namespaces that do not match, which has no such window.
Exact names still go to kopf as per-namespace watches, which need no
cluster-wide permissions.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass

_GLOB_CHARACTERS = frozenset("*?[!")


def is_pattern(namespace: str) -> bool:
    return any(character in _GLOB_CHARACTERS for character in namespace)


@dataclass(frozen=True)
class NamespaceScope:
    """``--namespace`` values: exact names or globs; ``!glob`` excludes; none means every namespace."""

    patterns: tuple[str, ...] = ()

    @property
    def cluster_wide(self) -> bool:
        """Whether the watches must be cluster-wide (no namespaces given, or any pattern among them)."""
        return not self.patterns or any(is_pattern(pattern) for pattern in self.patterns)

    @property
    def kopf_namespaces(self) -> list[str]:
        """What kopf watches per namespace: the exact names, or nothing when watching cluster-wide."""
        return [] if self.cluster_wide else list(self.patterns)

    def serves(self, namespace: str) -> bool:
        if not self.patterns:
            return True
        excluded = any(fnmatch.fnmatchcase(namespace, p[1:]) for p in self.patterns if p.startswith("!"))
        included = [p for p in self.patterns if not p.startswith("!")]
        matched = not included or any(fnmatch.fnmatchcase(namespace, p) for p in included)
        return matched and not excluded


def scope_of(patterns: Sequence[str]) -> NamespaceScope:
    return NamespaceScope(tuple(patterns))
