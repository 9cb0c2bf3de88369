"""The ``modelrelease`` command (``run`` starts the operator; the others steer and inspect releases) and the ``kubectl modelrelease`` plugin."""

from __future__ import annotations

import os
import sys

from modelrelease.cli.app import app

COMPLETE_VAR = "_MODELRELEASE_COMPLETE"


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``modelrelease``; returns the exit code instead of exiting, so tests can call it."""
    args = sys.argv[1:] if argv is None else argv
    if COMPLETE_VAR in os.environ:
        # The shell asks for completions (the script ``modelrelease completion`` prints); typer knows the
        # shells only once its completion classes are registered, which add_completion=False skips.
        from typer._completion_classes import completion_init

        completion_init()
    try:
        returned = app(args=args, prog_name="modelrelease", standalone_mode=False)
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
    # Without standalone mode click returns typer.Exit's code instead of raising it (and a command's None as such).
    return returned if isinstance(returned, int) else 0


def kubectl_plugin() -> int:
    """Entry point of ``kubectl modelrelease`` (kubectl finds it on PATH by name); the same commands."""
    return main()
