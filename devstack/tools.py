"""Small system tools the tests need that Python cannot provide: tmux (a real terminal for ``modelrelease watch``).

Installed by ``make setup`` with apt-get when missing, as Prometheus is
(``devstack.prometheus``): the CLI's TTY test fails, never skips, without it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path


class ToolNotInstalled(RuntimeError):
    pass


def ensure_tmux() -> Path:
    """The tmux binary, installed from the distribution first when missing (cheap when present)."""
    found = shutil.which("tmux")
    if found:
        return Path(found)
    if os.geteuid() != 0:
        raise ToolNotInstalled("tmux is not installed and this user cannot install it: run `sudo apt-get install tmux`")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "tmux"], check=True, env=env)
    found = shutil.which("tmux")
    if not found:
        raise ToolNotInstalled("apt-get installed tmux but no tmux binary was found on PATH")
    return Path(found)
