"""devstack: a real local Kubernetes cluster, model plane and Prometheus, without Docker.

Everything is a local process: etcd, kube-apiserver, controller-manager and
scheduler built from source (devstack.build), a pod runner that turns pods into
real processes on 127.x addresses (devstack.podrunner), a TF-Serving-compatible
model server (devstack.modelserver) serving SavedModels trained at setup time
(devstack.models), Prometheus (devstack.prometheus) and a labelled traffic
generator (devstack.traffic).
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """Root of every cached build and of the default state directory."""
    return Path(os.environ.get("MODELRELEASE_CACHE", Path.home() / ".cache" / "modelrelease"))
