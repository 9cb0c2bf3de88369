"""A private certificate authority and the certificates the control plane needs.

Why the openssl CLI: the venv carries no ``cryptography`` package and every
machine that builds Kubernetes has openssl.  Keys are ECDSA P-256, which every
component accepts and which takes milliseconds to generate, so a fresh
devstack's PKI costs well under a second.  Everything is made once per state
directory and reused, so kubeconfigs handed out earlier stay valid across
``down``/``up``.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

DAYS = "3650"
CURVE = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


class PKIError(RuntimeError):
    """openssl is missing or refused to make a certificate."""


@dataclass(frozen=True)
class ClientIdentity:
    """Who a client certificate authenticates as: user name (CN) and groups (O)."""

    file_stem: str
    user: str
    groups: tuple[str, ...] = ()


ADMIN = ClientIdentity("admin", "devstack-admin", ("system:masters",))
CONTROLLER_MANAGER = ClientIdentity("controller-manager", "system:kube-controller-manager")
SCHEDULER = ClientIdentity("scheduler", "system:kube-scheduler")
CLIENTS = (ADMIN, CONTROLLER_MANAGER, SCHEDULER)


@dataclass(frozen=True)
class PKI:
    directory: Path

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca.key"

    @property
    def serving_cert(self) -> Path:
        return self.directory / "apiserver.crt"

    @property
    def serving_key(self) -> Path:
        return self.directory / "apiserver.key"

    @property
    def service_account_key(self) -> Path:
        return self.directory / "sa.key"

    @property
    def service_account_pub(self) -> Path:
        return self.directory / "sa.pub"

    def client_cert(self, who: ClientIdentity) -> Path:
        return self.directory / f"{who.file_stem}.crt"

    def client_key(self, who: ClientIdentity) -> Path:
        return self.directory / f"{who.file_stem}.key"


def _openssl(*args: str) -> None:
    if shutil.which("openssl") is None:
        raise PKIError("openssl is not on PATH; devstack needs it to make the cluster's certificates")
    result = subprocess.run(["openssl", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise PKIError(f"openssl {args[0]} failed: {result.stderr.strip()}")


def _subject(common_name: str, groups: tuple[str, ...] = ()) -> str:
    return "".join(f"/O={group}" for group in groups) + f"/CN={common_name}"


def _leaf(pki: PKI, cert: Path, key: Path, subject: str, extensions: list[str]) -> None:
    addext: list[str] = []
    for ext in [
        "basicConstraints=critical,CA:FALSE",
        "keyUsage=critical,digitalSignature,keyEncipherment",
        *extensions,
    ]:
        addext += ["-addext", ext]
    tmp_cert, tmp_key = cert.with_suffix(".crt.tmp"), key.with_suffix(".key.tmp")
    _openssl(
        "req", "-x509", *CURVE, "-days", DAYS, "-subj", subject,
        "-CA", str(pki.ca_cert), "-CAkey", str(pki.ca_key),
        "-keyout", str(tmp_key), "-out", str(tmp_cert), *addext,
    )  # fmt: skip
    tmp_key.chmod(0o600)
    tmp_key.rename(key)
    tmp_cert.rename(cert)


def ensure(directory: Path, service_ip: str) -> PKI:
    """Make whatever part of the PKI is missing; return where it lives."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    pki = PKI(directory)
    if not (pki.ca_cert.exists() and pki.ca_key.exists()):
        _openssl(
            "req", "-x509", *CURVE, "-days", DAYS, "-subj", "/CN=devstack-ca",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
            "-keyout", str(pki.ca_key), "-out", str(pki.ca_cert),
        )  # fmt: skip
        pki.ca_key.chmod(0o600)
        # A new CA invalidates every certificate signed by the old one.
        for stale in [pki.serving_cert, *(pki.client_cert(who) for who in CLIENTS)]:
            stale.unlink(missing_ok=True)
    names = ",".join(
        [
            "DNS:localhost",
            "DNS:kubernetes",
            "DNS:kubernetes.default",
            "DNS:kubernetes.default.svc",
            "DNS:kubernetes.default.svc.cluster.local",
            "IP:127.0.0.1",
            f"IP:{service_ip}",
        ]
    )
    # The names are recorded next to the certificate so a changed service range gets a new one.
    names_file = pki.serving_cert.with_suffix(".names")
    if not pki.serving_cert.exists() or not names_file.exists() or names_file.read_text() != names:
        _leaf(
            pki,
            pki.serving_cert,
            pki.serving_key,
            _subject("kube-apiserver"),
            ["extendedKeyUsage=serverAuth", "subjectAltName=" + names],
        )
        names_file.write_text(names)
    for who in CLIENTS:
        ensure_client(pki, who)
    if not pki.service_account_key.exists():
        tmp = pki.service_account_key.with_suffix(".tmp")
        _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(tmp))
        tmp.chmod(0o600)
        _openssl("ec", "-in", str(tmp), "-pubout", "-out", str(pki.service_account_pub))
        tmp.rename(pki.service_account_key)
    return pki


def ensure_client(pki: PKI, who: ClientIdentity) -> None:
    """A client certificate for ``who`` signed by the devstack CA, unless one exists (another user name, say)."""
    if not pki.client_cert(who).exists():
        _leaf(
            pki,
            pki.client_cert(who),
            pki.client_key(who),
            _subject(who.user, who.groups),
            ["extendedKeyUsage=clientAuth"],
        )
