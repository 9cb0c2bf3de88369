"""The ``modelrelease`` command (``run`` starts the operator) and the ``kubectl modelrelease`` plugin."""

from __future__ import annotations

import sys

from modelrelease.cli.app import app


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``modelrelease``; returns the exit code instead of exiting, so tests can call it."""
    args = sys.argv[1:] if argv is None else argv
    try:
        app(args=args, prog_name="modelrelease", standalone_mode=False)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    except Exception as error:  # click's usage errors carry their own exit code
        code = getattr(error, "exit_code", None)
        if code is None:
            raise
        show = getattr(error, "show", None)
        if callable(show):
            show()
        return int(code)
    return 0


def kubectl_plugin() -> int:
    """Entry point of ``kubectl modelrelease`` (kubectl finds it on PATH by name); the same commands."""
    return main()
