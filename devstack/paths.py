"""Map the absolute paths a pod sees to directories on this machine.

A real kubelet mounts volumes into the container's filesystem; the pod runner
has no containers, so it materialises each volume in a local directory and
tells the process where with ``DEVSTACK_PATH_MAP`` (``/models=/home/u/.cache/...,
/etc/config=/tmp/pod/vol/config``).  Processes that open files named by their
flags (the model server's ``--model_base_path``, ``--model_config_file``)
resolve them here, longest mount first, exactly as a mount table would.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

ENV_VAR = "DEVSTACK_PATH_MAP"


def parse_map(text: str) -> list[tuple[PurePosixPath, Path]]:
    """Parse ``mount=local,mount=local`` into (mount, local) pairs, longest mount first."""
    pairs: list[tuple[PurePosixPath, Path]] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        mount, sep, local = item.partition("=")
        if not sep or not mount.startswith("/"):
            raise ValueError(f"{ENV_VAR}: {item!r} is not of the form /mount/path=/local/dir")
        pairs.append((PurePosixPath(mount), Path(local)))
    return sorted(pairs, key=lambda pair: len(pair[0].parts), reverse=True)


def format_map(pairs: dict[str, Path]) -> str:
    return ",".join(f"{mount}={local}" for mount, local in pairs.items())


def resolve(path: str | os.PathLike[str], mapping: str | None = None) -> Path:
    """Return where ``path`` lives on this machine; unmapped paths are returned unchanged."""
    text = os.environ.get(ENV_VAR, "") if mapping is None else mapping
    posix = PurePosixPath(os.fspath(path))
    for mount, local in parse_map(text):
        if posix == mount or mount in posix.parents:
            return local.joinpath(*posix.parts[len(mount.parts) :])
    return Path(posix)
