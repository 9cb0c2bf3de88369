"""``python -m devstack.podrunner.mountns SRC DST -- ARGV...``: run ARGV with SRC mounted read-only at DST, for it alone.

Why: in-cluster Kubernetes clients (kopf, kubernetes_asyncio, client-go) read
the ServiceAccount token and CA from the fixed path
``/var/run/secrets/kubernetes.io/serviceaccount``, not from a path they are
told.  A kubelet mounts the pod's projected token there; the pod runner has
no containers, so this gives the process a mount namespace of its own (as a
container has) with the token directory bind-mounted read-only at that path.
The mount is private: no other process on the machine sees it, and it goes
away with the process.  The process keeps its pid (this execs ARGV), so the
pod runner signals it as before.

It needs CAP_SYS_ADMIN (root); ``available()`` says whether the pod runner
can use it, else the pod's clients fall back to the KUBECONFIG the pod
runner writes from the same token.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

CLONE_NEWNS = 0x00020000
MS_RDONLY = 1
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18


def available() -> bool:
    """Whether this machine lets the pod runner give a process its own mounts (root on Linux)."""
    return sys.platform.startswith("linux") and os.geteuid() == 0


def wrap(argv: list[str], source: str, target: str) -> list[str]:
    """ARGV, run with ``source`` mounted at ``target``."""
    return [sys.executable, "-m", "devstack.podrunner.mountns", source, target, "--", *argv]


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def enter(source: str, target: str) -> None:
    """Unshare the mount namespace, keep its mounts from propagating back, and bind ``source`` at ``target``."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    _check(libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    _check(libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "making / private")
    os.makedirs(target, exist_ok=True)  # an empty directory on the host: the mount point, as on a node
    _check(libc.mount(source.encode(), target.encode(), None, MS_BIND, None), f"bind-mounting {source} at {target}")
    flags = MS_BIND | MS_REMOUNT | MS_RDONLY
    _check(libc.mount(None, target.encode(), None, flags, None), f"making {target} read-only")


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[2] != "--":
        print("usage: python -m devstack.podrunner.mountns SRC DST -- ARGV...", file=sys.stderr)
        return 2
    source, target, _, *command = argv
    try:
        enter(source, target)
    except OSError as error:
        print(f"devstack mountns: {error}", file=sys.stderr)
        return 1
    os.execvp(command[0], command)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
