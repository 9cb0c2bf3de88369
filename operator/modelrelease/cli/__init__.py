"""The `modelrelease` command and the `kubectl modelrelease` plugin."""

from __future__ import annotations

import sys

_HELP = """modelrelease: stage TensorFlow Serving model rollouts on Kubernetes.

Commands arrive with the CLI issue: run (start the operator), status,
approve, promote, abort, retry.  Today: `modelrelease --help`.
"""


def main(argv: list[str] | None = None) -> int:
    """Entry point of `modelrelease` (a stub until the CLI issue lands)."""
    args = sys.argv[1:] if argv is None else argv
    print(_HELP, end="")
    return 0 if not args or args[0] in {"-h", "--help", "help"} else 2


def kubectl_plugin() -> int:
    """Entry point of `kubectl modelrelease` (kubectl finds it on PATH by name)."""
    return main()
