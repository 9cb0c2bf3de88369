"""What the operator will run on behalf of a ModelRelease's author: the trust boundary, as pure checks.

Why this exists: the operator creates Deployments with its own credentials,
so whoever may create a ModelRelease could otherwise make it run any pod
spec (another ServiceAccount's token, the node's filesystem through
hostPath, a privileged container, the host's network) and make it send
HTTP requests to any address it names as its Prometheus (SSRF from inside
the cluster).  The operator's flags set a policy; every release is checked
against it before anything is applied or queried, and a release that breaks
it gets ``Valid=False`` with the field and the rule named, and an event.

The checks are pure (a spec in, violations out), so every rule is a unit
test; ``reconcile`` calls ``ReleasePolicy.refusal`` once per pass and
``measure.Analyzer`` asks ``PrometheusAllowList.allows`` again before any
query, so a refused address is never contacted even if a check were missed.

Rules on pod fields follow the Kubernetes Pod Security Standards' baseline
profile, stricter on capabilities (none may be added): host namespaces,
hostPath volumes, host ports, privileged containers, added capabilities,
/proc mount types, unconfined seccomp/AppArmor, custom SELinux users and
roles, Windows host processes and unsafe sysctls.  ``--allow-privileged-pods``
switches all of those off for clusters where release authors are trusted
with the nodes; images and ServiceAccounts are checked regardless.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from modelrelease.api.spec import ModelReleaseSpec

POLICY_VIOLATION = "PolicyViolation"
PROMETHEUS_NOT_ALLOWED = "PrometheusNotAllowed"
WEBHOOK_NOT_ALLOWED = "WebhookNotAllowed"

DEFAULT_SERVICE_ACCOUNTS: tuple[str, ...] = ("default",)

# The sysctls the Pod Security Standards' baseline profile allows (namespaced, safe).
SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    }
)
SAFE_SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"})
CONTAINER_LISTS: tuple[str, ...] = ("containers", "initContainers", "ephemeralContainers")

POD_TEMPLATE = "spec.serving.podTemplate"


@dataclass(frozen=True)
class Violation:
    """One field of a release that the operator's policy refuses, and the rule it breaks."""

    field: str
    rule: str
    detail: str
    reason: str = POLICY_VIOLATION

    def message(self) -> str:
        return f"{self.field}: {self.detail} (operator policy rule {self.rule})"


@dataclass(frozen=True)
class Refusal:
    """Why a release is not acted on: the condition reason and a message naming every violation."""

    reason: str
    message: str


# --- Prometheus addresses


def normalize_address(address: str) -> str | None:
    """The form two addresses are compared in: scheme and host lower-cased, default port and trailing '/' dropped.

    None for what cannot be compared safely: not http(s), no host, a port
    that is not a number.  Credentials, query and fragment are kept, so an
    address that carries them matches only an entry that carries the same.
    """
    try:
        parts = urlsplit(address.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    default_port = 80 if scheme == "http" else 443
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port in (None, default_port) else f"{host}:{port}"
    if parts.username is not None or parts.password is not None:
        netloc = f"{parts.netloc.rsplit('@', 1)[0]}@{netloc}"
    normalized = f"{scheme}://{netloc}{parts.path.rstrip('/')}"
    if parts.query:
        normalized += f"?{parts.query}"
    if parts.fragment:
        normalized += f"#{parts.fragment}"
    return normalized


@dataclass(frozen=True)
class PrometheusAllowList:
    """The Prometheus addresses a release may name: exact matches only, after ``normalize_address``.

    Exact, not prefix: a prefix would let ``http://prom:9090/../other`` or
    ``http://prom:9090.evil.example`` through unless every path and host
    trick were thought of; listing each address is cheap.
    """

    addresses: frozenset[str] = frozenset()

    @classmethod
    def of(cls, operator_default: str | None, extra: Iterable[str] = ()) -> PrometheusAllowList:
        """The operator's own ``--prometheus-address`` plus every ``--allowed-prometheus-address``."""
        given = [operator_default, *extra] if operator_default else list(extra)
        return cls(frozenset(n for n in (normalize_address(a) for a in given) if n is not None))

    def allows(self, address: str) -> bool:
        normalized = normalize_address(address)
        return normalized is not None and normalized in self.addresses

    def describe(self) -> str:
        return ", ".join(sorted(self.addresses)) or "none"


def prometheus_violations(spec: ModelReleaseSpec, allowed: PrometheusAllowList) -> list[Violation]:
    address = spec.analysis.prometheus.address
    if address is None or allowed.allows(str(address)):
        return []
    detail = (
        f"{address} is not a Prometheus this operator may query (allowed: {allowed.describe()}); "
        "unset it to use the operator's --prometheus-address, or ask the operator's admins to add it "
        "with --allowed-prometheus-address"
    )
    return [Violation("spec.analysis.prometheus.address", "prometheus-allow-list", detail, PROMETHEUS_NOT_ALLOWED)]


def webhook_violations(spec: ModelReleaseSpec, allowed: PrometheusAllowList) -> list[Violation]:
    """Each webhook or notification URL the operator's ``--allowed-webhook-address`` does not list (exact match)."""
    hooks = spec.webhooks
    found = []
    for field, hook in (
        ("preRollout", hooks.pre_rollout),
        ("confirmPromotion", hooks.confirm_promotion),
        ("postRollout", hooks.post_rollout),
        ("onRollback", hooks.on_rollback),
    ):
        if hook is None or allowed.allows(str(hook.url)):
            continue
        detail = (
            f"{hook.url} is not a webhook address this operator may call (allowed: {allowed.describe()}); "
            "ask the operator's admins to add it with --allowed-webhook-address"
        )
        found.append(Violation(f"spec.webhooks.{field}.url", "webhook-allow-list", detail, WEBHOOK_NOT_ALLOWED))
    for index, target in enumerate(spec.notifications):  # the same list: a notification is a webhook too
        if not allowed.allows(str(target.url)):
            detail = (
                f"{target.url} is not a webhook address this operator may call (allowed: {allowed.describe()}); "
                "ask the operator's admins to add it with --allowed-webhook-address"
            )
            found.append(
                Violation(f"spec.notifications[{index}].url", "webhook-allow-list", detail, WEBHOOK_NOT_ALLOWED)
            )
    return found


# --- images


def normalize_image(image: str) -> str:
    """The fully qualified reference a container runtime pulls: ``busybox`` is ``docker.io/library/busybox``."""
    first, _, rest = image.partition("/")
    if not rest:
        return f"docker.io/library/{image}"
    if "." in first or ":" in first or first == "localhost":
        return image
    return f"docker.io/{image}"


def image_allowed(image: str, patterns: Sequence[str]) -> bool:
    """Any image when there are no patterns; else a glob matching the image as written or fully qualified.

    ``*`` matches any characters, '/' and ':' included: ``tensorflow/serving:*``
    allows every tag of that repository, ``registry.example.com/ml/*`` every
    image below that path.
    """
    if not patterns:
        return True
    candidates = (image, normalize_image(image))
    return any(fnmatch.fnmatchcase(candidate, pattern) for pattern in patterns for candidate in candidates)


# --- pod fields


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _set(value: Any) -> bool:
    """A field the user set to something other than its harmless default (absent, null, false, 0, empty)."""
    return value not in (None, False, 0, "", [], {})


def _security_profile_violations(context: dict[str, Any], path: str) -> Iterator[Violation]:
    """seccomp, AppArmor, SELinux and Windows options: allowed in a pod's and in a container's securityContext."""
    for profile in ("seccompProfile", "appArmorProfile"):
        if _mapping(context.get(profile)).get("type") == "Unconfined":
            yield Violation(f"{path}.{profile}.type", "security-profiles", "Unconfined is not allowed")
    selinux = _mapping(context.get("seLinuxOptions"))
    for key in ("user", "role"):
        if _set(selinux.get(key)):
            yield Violation(
                f"{path}.seLinuxOptions.{key}", "security-profiles", "a custom SELinux user or role is not allowed"
            )
    if str(selinux.get("type") or "") not in SAFE_SELINUX_TYPES:
        allowed = ", ".join(sorted(t for t in SAFE_SELINUX_TYPES if t))
        yield Violation(f"{path}.seLinuxOptions.type", "security-profiles", f"must be one of {allowed}")
    if _set(_mapping(context.get("windowsOptions")).get("hostProcess")):
        yield Violation(
            f"{path}.windowsOptions.hostProcess", "host-namespaces", "Windows host processes are not allowed"
        )


def _container_violations(container: dict[str, Any], path: str) -> Iterator[Violation]:
    context = _mapping(container.get("securityContext"))
    context_path = f"{path}.securityContext"
    if _set(context.get("privileged")):
        yield Violation(f"{context_path}.privileged", "privileged", "privileged containers are not allowed")
    if _set(_mapping(context.get("capabilities")).get("add")):
        yield Violation(f"{context_path}.capabilities.add", "added-capabilities", "no capability may be added")
    if context.get("procMount") not in (None, "Default"):
        yield Violation(f"{context_path}.procMount", "proc-mount", "only the Default /proc mount is allowed")
    yield from _security_profile_violations(context, context_path)
    for index, port in enumerate(_items(container.get("ports"))):
        if _set(_mapping(port).get("hostPort")):
            yield Violation(f"{path}.ports[{index}].hostPort", "host-ports", "host ports are not allowed")


def privileged_violations(pod_template: dict[str, Any]) -> list[Violation]:
    """Fields of a pod spec fragment that reach outside the pod's sandbox (the baseline profile, no added capabilities)."""
    found: list[Violation] = []
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if _set(pod_template.get(key)):
            found.append(Violation(f"{POD_TEMPLATE}.{key}", "host-namespaces", f"{key} is not allowed"))
    for index, volume in enumerate(_items(pod_template.get("volumes"))):
        if "hostPath" in _mapping(volume):
            path = f"{POD_TEMPLATE}.volumes[{index}].hostPath"
            found.append(Violation(path, "host-path", "hostPath volumes are not allowed"))
    context = _mapping(pod_template.get("securityContext"))
    found.extend(_security_profile_violations(context, f"{POD_TEMPLATE}.securityContext"))
    for index, sysctl in enumerate(_items(context.get("sysctls"))):
        name = str(_mapping(sysctl).get("name") or "")
        if name not in SAFE_SYSCTLS:
            path = f"{POD_TEMPLATE}.securityContext.sysctls[{index}].name"
            found.append(Violation(path, "sysctls", f"{name!r} is not one of the safe sysctls"))
    for key in CONTAINER_LISTS:
        for index, container in enumerate(_items(pod_template.get(key))):
            found.extend(_container_violations(_mapping(container), f"{POD_TEMPLATE}.{key}[{index}]"))
    return found


def image_violations(spec: ModelReleaseSpec, patterns: Sequence[str]) -> list[Violation]:
    """The serving image and every container image the pod template adds."""
    if not patterns:
        return []
    images = [("spec.serving.image", spec.serving.image)]
    for key in CONTAINER_LISTS:
        for index, container in enumerate(_items(spec.serving.pod_template.get(key))):
            image = _mapping(container).get("image")
            if isinstance(image, str):
                images.append((f"{POD_TEMPLATE}.{key}[{index}].image", image))
    allowed = ", ".join(patterns)
    return [
        Violation(path, "allowed-images", f"{image!r} matches none of the allowed images ({allowed})")
        for path, image in images
        if not image_allowed(image, patterns)
    ]


def service_account_violations(pod_template: dict[str, Any], allowed: Sequence[str]) -> list[Violation]:
    """``serviceAccountName`` (and its deprecated alias ``serviceAccount``) must be unset or allowed."""
    found = []
    for key in ("serviceAccountName", "serviceAccount"):
        name = pod_template.get(key)
        if name is not None and name not in allowed:
            detail = f"{name!r} is not a ServiceAccount releases may run as (allowed: {', '.join(allowed) or 'none'})"
            found.append(Violation(f"{POD_TEMPLATE}.{key}", "allowed-service-accounts", detail))
    return found


@dataclass(frozen=True)
class ReleasePolicy:
    """The operator's policy for every release it acts on (from ``modelrelease run``'s flags).

    The defaults are the safe ones: only the operator's own Prometheus (none
    when it has none), any image, only the namespace's ``default``
    ServiceAccount (the one a pod runs as when it names none, so it is
    always in the list ``modelrelease run`` builds), no privileged pod fields.
    """

    prometheus: PrometheusAllowList = PrometheusAllowList()
    images: tuple[str, ...] = ()
    service_accounts: tuple[str, ...] = DEFAULT_SERVICE_ACCOUNTS
    allow_privileged_pods: bool = False
    webhooks: PrometheusAllowList = PrometheusAllowList()
    """The lifecycle webhook URLs releases may name (``--allowed-webhook-address``); none by default."""

    def violations(self, spec: ModelReleaseSpec) -> list[Violation]:
        pod_template = spec.serving.pod_template
        found = prometheus_violations(spec, self.prometheus)
        found += webhook_violations(spec, self.webhooks)
        found += image_violations(spec, self.images)
        found += service_account_violations(pod_template, self.service_accounts)
        if not self.allow_privileged_pods:
            found += privileged_violations(pod_template)
        return found

    def refusal(self, spec: ModelReleaseSpec) -> Refusal | None:
        """None when the release may be acted on; else the first violation's reason and every violation's message."""
        found = self.violations(spec)
        if not found:
            return None
        messages = "; ".join(violation.message() for violation in found)
        return Refusal(found[0].reason, f"the operator's policy refuses this release: {messages}")
