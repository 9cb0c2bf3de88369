"""Kubeconfig files and a tiny HTTPS probe, with nothing but the standard library.

Why not the kubernetes client here: ``devstack up`` polls ``/readyz`` many times
a second while the API server starts, and must work before any client library
is importable in a bare ``python -m devstack`` run.
"""

from __future__ import annotations

import http.client
import ssl
from pathlib import Path

import yaml

from devstack.pki import PKI, ClientIdentity


def write(path: Path, pki: PKI, who: ClientIdentity, server: str) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "devstack", "cluster": {"server": server, "certificate-authority": str(pki.ca_cert)}}],
        "users": [
            {
                "name": who.file_stem,
                "user": {
                    "client-certificate": str(pki.client_cert(who)),
                    "client-key": str(pki.client_key(who)),
                },
            }
        ],
        "contexts": [{"name": "devstack", "context": {"cluster": "devstack", "user": who.file_stem}}],
        "current-context": "devstack",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(config, sort_keys=False))
    tmp.chmod(0o600)
    tmp.rename(path)
    return path


def get(host: str, port: int, path: str, pki: PKI, who: ClientIdentity, timeout: float = 2.0) -> tuple[int, str]:
    """GET ``path`` from the API server as ``who``; (status, body), or (0, error text) if unreachable."""
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    context.load_cert_chain(str(pki.client_cert(who)), str(pki.client_key(who)))
    conn = http.client.HTTPSConnection(host, port, context=context, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode(errors="replace")
    except (OSError, http.client.HTTPException) as exc:
        return 0, str(exc)
    finally:
        conn.close()
