"""The one table that says which local command each container image stands for.

There is no container runtime: a pod's image is a name for a program that is
already on this machine.  Patterns are shell-style globs over the normalised
image reference (``docker.io/`` and ``library/`` dropped, ``:latest`` added).
Add a row here to run a new kind of pod.
"""

from __future__ import annotations

import fnmatch
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

PYTHON_NAMES = {"python", "python3", "/usr/bin/python", "/usr/bin/python3", "/usr/local/bin/python"}


@dataclass(frozen=True)
class Launch:
    """What the kubelet would hand the runtime: the pod IP, and the container's command and args (expanded)."""

    pod_ip: str
    command: Sequence[str]
    args: Sequence[str]


def _drop_entrypoint(launch: Launch, *names: str) -> list[str]:
    """A container may name the image's own binary as its command; the local program stands in for it."""
    command = list(launch.command)
    if command and command[0].rsplit("/", 1)[-1] in names:
        command = command[1:]
    return [*command, *launch.args]


def _tf_serving(launch: Launch) -> list[str]:
    rest = _drop_entrypoint(launch, "tensorflow_model_server", "tf_serving_entrypoint.sh")
    return [sys.executable, "-m", "devstack.modelserver", f"--bind_address={launch.pod_ip}", *rest]


OPERATOR_ENTRYPOINT = ("run",)
"""The operator image's ENTRYPOINT is ``modelrelease run`` (Dockerfile): a container's args are run's flags."""


def _operator(launch: Launch) -> list[str]:
    """This checkout's ``modelrelease``; with no command, the image's entrypoint ``modelrelease run`` comes first."""
    if launch.command:
        return [sys.executable, "-m", "modelrelease.cli", *_drop_entrypoint(launch, "modelrelease")]
    return [sys.executable, "-m", "modelrelease.cli", *OPERATOR_ENTRYPOINT, *launch.args]


def _probe_server(launch: Launch) -> list[str]:
    rest = _drop_entrypoint(launch, "probe-server")
    return [sys.executable, "-m", "devstack.podrunner.probeserver", f"--host={launch.pod_ip}", *rest]


def _python(launch: Launch) -> list[str]:
    """``devstack/python``: the container's own command, with this interpreter standing in for ``python``."""
    argv = [*launch.command, *launch.args]
    if not argv:
        raise ValueError("the devstack/python image has no entrypoint: give the container a command")
    if argv[0] in PYTHON_NAMES:
        argv[0] = sys.executable
    return argv


IMAGE_TABLE: tuple[tuple[str, Callable[[Launch], list[str]]], ...] = (
    ("tensorflow/serving:*", _tf_serving),
    ("ghcr.io/modelrelease/operator:*", _operator),
    ("modelrelease-operator:*", _operator),
    ("devstack/probe-server:*", _probe_server),
    ("devstack/python:*", _python),
)


def normalise(image: str) -> str:
    """``docker.io/library/x`` -> ``x:latest``; digests are kept as the tag."""
    name = image.strip()
    for prefix in ("docker.io/", "index.docker.io/"):
        if name.startswith(prefix):
            name = name[len(prefix) :]
    if name.startswith("library/"):
        name = name[len("library/") :]
    last = name.rsplit("/", 1)[-1]
    if "@" in last:
        name = name.replace("@", ":", 1)
    elif ":" not in last:
        name += ":latest"
    return name


def known_patterns() -> list[str]:
    return [pattern for pattern, _ in IMAGE_TABLE]


def command_for(image: str, launch: Launch) -> list[str] | None:
    """The argv to run for ``image``, or None when no local program stands for it (an image pull failure)."""
    reference = normalise(image)
    for pattern, build in IMAGE_TABLE:
        if fnmatch.fnmatchcase(reference, pattern):
            return build(launch)
    return None
