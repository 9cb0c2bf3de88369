"""One pod on this node: its IP, volumes and containers, its status, and its graceful end.

The worker publishes status through the pods/status subresource with a JSON
merge patch, and only when the computed status differs from the last one it
sent, so an idle pod costs the API server nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from devstack import paths
from devstack.podrunner import images, mountns
from devstack.podrunner.clock import now_rfc3339
from devstack.podrunner.container import ContainerRunner, Prepared, RestartPolicy, StartFailure
from devstack.podrunner.env import ContainerConfigError, build_env, decode_source
from devstack.podrunner.expansion import expand
from devstack.podrunner.ipam import IPAllocator
from devstack.podrunner.kube import JSON, ApiError, Kube
from devstack.podrunner.status import ConditionBook, kubelet_conditions, pod_phase
from devstack.podrunner.volumes import (
    SERVICE_ACCOUNT_DIR,
    VolumeError,
    materialise,
    mount_table,
    read_object,
    remove_tree,
    write_kubeconfig,
)

log = logging.getLogger(__name__)
PASSED_THROUGH_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "MODELRELEASE_CACHE", "PYTHONPATH")


@dataclass
class NodeContext:
    """What every pod on this node shares."""

    kube: Kube
    node_name: str
    host_ip: str
    api_host: str
    api_port: int
    state_dir: Path
    allocator: IPAllocator
    fixed_mounts: dict[str, Path]


def pod_key(pod: JSON) -> str:
    meta = pod["metadata"]
    return f"{meta['namespace']}/{meta['name']}"


def grace_seconds(pod: JSON) -> float:
    meta, spec = pod["metadata"], pod.get("spec", {})
    value = meta.get("deletionGracePeriodSeconds")
    if value is None:
        value = spec.get("terminationGracePeriodSeconds")
    return float(30 if value is None else value)


@dataclass
class PodWorker:
    node: NodeContext
    pod: JSON
    pod_ip: str = ""
    start_time: str = field(default_factory=now_rfc3339)
    init_runners: list[ContainerRunner] = field(default_factory=list)
    runners: list[ContainerRunner] = field(default_factory=list)
    init_done: bool = False
    init_failed: bool = False
    sandbox_ready: bool = False
    creating_message: str = ""
    _conditions: ConditionBook = field(default_factory=ConditionBook)
    _dirty: asyncio.Event = field(default_factory=asyncio.Event)
    _terminating: asyncio.Event = field(default_factory=asyncio.Event)
    _gone: bool = False
    _last_sent: JSON | None = None
    _volumes: dict[str, Path] = field(default_factory=dict)

    @property
    def uid(self) -> str:
        return str(self.pod["metadata"]["uid"])

    @property
    def key(self) -> str:
        return pod_key(self.pod)

    @property
    def directory(self) -> Path:
        meta = self.pod["metadata"]
        return self.node.state_dir / "pods" / f"{meta['namespace']}_{meta['name']}_{meta['uid']}"

    @property
    def restart_policy(self) -> RestartPolicy:
        policy = self.pod.get("spec", {}).get("restartPolicy") or "Always"
        return policy if policy in ("Always", "OnFailure", "Never") else "Always"  # type: ignore[return-value]

    def changed(self) -> None:
        self._dirty.set()

    def update(self, pod: JSON) -> None:
        """A newer version of the pod from the watch: deletion and readiness gates are read from it."""
        self.pod = pod
        if pod["metadata"].get("deletionTimestamp"):
            self._terminating.set()
        self.changed()

    def vanished(self) -> None:
        """The pod object is gone from the API (force-deleted): stop without writing to it."""
        self._gone = True
        self._terminating.set()

    # -- main --------------------------------------------------------------

    async def run(self) -> None:
        publisher = asyncio.create_task(self._publish_forever(), name=f"status-{self.key}")
        life = asyncio.create_task(self._live(), name=f"pod-{self.key}")
        try:
            terminating = asyncio.create_task(self._terminating.wait())
            await asyncio.wait({life, terminating}, return_when=asyncio.FIRST_COMPLETED)
            if not self._terminating.is_set():
                # Every container finished for good (restartPolicy Never/OnFailure): the pod stays until deleted.
                await self._terminating.wait()
            await self._shutdown(life)
        finally:
            for task in (publisher, life):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _live(self) -> None:
        self.pod_ip = self.node.allocator.allocate(self.uid)
        self.start_time = self.pod.get("status", {}).get("startTime") or self.start_time
        self.directory.mkdir(parents=True, exist_ok=True)
        self.sandbox_ready = True
        self._make_runners()
        self.changed()
        await self._materialise_volumes()
        for runner in self.init_runners:
            exit_code = await runner.run(run_to_completion=True)
            if exit_code != 0:
                self.init_failed = self.restart_policy == "Never"
                self.changed()
                return
        self.init_done = True
        self.changed()
        await asyncio.gather(*(runner.run() for runner in self.runners))

    async def _materialise_volumes(self) -> None:
        """Retry with back-off while a ConfigMap, Secret or token is missing, as the kubelet's FailedMount does."""
        delay = 1.0
        while True:
            try:
                self._volumes = await materialise(
                    self.node.kube, self.pod, self.directory / "volumes", self.pod_ip, self.node.host_ip
                )
                self.creating_message = ""
                break
            except (VolumeError, ApiError, OSError) as error:
                self.creating_message = f"MountVolume.SetUp failed: {error}"
                log.warning("pod %s: %s", self.key, self.creating_message)
                for runner in [*self.init_runners, *self.runners]:
                    runner.state = {"waiting": {"reason": "ContainerCreating", "message": self.creating_message}}
                self.changed()
                await asyncio.sleep(delay)  # retry schedule of a failed mount, not synchronisation
                delay = min(delay * 2, 30.0)
        token_dir = self._volume_at(SERVICE_ACCOUNT_DIR)
        if token_dir is not None:
            write_kubeconfig(self.directory / "kubeconfig", self._api_url(), token_dir)

    def _volume_at(self, mount_path: str) -> Path | None:
        for container in self.pod.get("spec", {}).get("containers") or ():
            for mount in container.get("volumeMounts") or ():
                if mount.get("mountPath", "").rstrip("/") == mount_path and mount["name"] in self._volumes:
                    return self._volumes[mount["name"]]
        return None

    def _api_url(self) -> str:
        return f"https://{self.node.api_host}:{self.node.api_port}"

    def _make_runners(self) -> None:
        spec = self.pod.get("spec", {})
        previous = {s["name"]: s for s in self.pod.get("status", {}).get("containerStatuses") or ()}
        grace = float(spec.get("terminationGracePeriodSeconds") or 30)
        for kind, target in (("initContainers", self.init_runners), ("containers", self.runners)):
            for container in spec.get(kind) or ():
                runner = ContainerRunner(
                    spec=container,
                    pod_ip="",
                    log_dir=self.directory / "logs",
                    restart_policy=self.restart_policy,
                    on_change=self.changed,
                    prepare=functools.partial(self._prepare, container),
                    pod_label=f"{self.pod['metadata']['name']}_{self.pod['metadata']['namespace']}({self.uid})",
                    termination_grace=grace,
                )
                runner.pod_ip = self.pod_ip
                old = previous.get(container["name"])
                if old is not None and kind == "containers":
                    # A restarted pod runner: the old process was killed, so this start is a restart.
                    runner.restart_count = int(old.get("restartCount", 0)) + (1 if old.get("containerID") else 0)
                target.append(runner)

    async def _read_source(self, kind: str, namespace: str, name: str) -> dict[str, str] | None:
        obj = await read_object(self.node.kube, kind, namespace, name)
        return None if obj is None else decode_source(kind, obj)

    def _base_env(self) -> dict[str, str]:
        env = {k: os.environ[k] for k in PASSED_THROUGH_ENV if k in os.environ}
        env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
        env.update(
            HOSTNAME=self.pod["metadata"]["name"],
            HOME=str(self.directory),
            TMPDIR=str(self.directory / "tmp"),
            POD_IP=self.pod_ip,
            DEVSTACK_POD_UID=self.uid,
            DEVSTACK_POD_RUNNER_STATE=str(self.node.state_dir),
            KUBERNETES_SERVICE_HOST=self.node.api_host,
            KUBERNETES_SERVICE_PORT=str(self.node.api_port),
            KUBERNETES_SERVICE_PORT_HTTPS=str(self.node.api_port),
            KUBERNETES_PORT=f"tcp://{self.node.api_host}:{self.node.api_port}",
        )
        kubeconfig = self.directory / "kubeconfig"
        if kubeconfig.exists():
            env["KUBECONFIG"] = str(kubeconfig)
        return env

    async def _prepare(self, container: JSON) -> Prepared:
        try:
            env = await build_env(
                self.pod,
                container,
                pod_ip=self.pod_ip,
                host_ip=self.node.host_ip,
                read=self._read_source,
                base=self._base_env(),
            )
            table = mount_table(container, self._volumes, self.node.fixed_mounts)
        except (ContainerConfigError, VolumeError, ValueError) as error:
            raise StartFailure("CreateContainerConfigError", str(error)) from error
        except ApiError as error:
            raise StartFailure("CreateContainerConfigError", f"reading the container's config: {error}") from error
        env[paths.ENV_VAR] = paths.format_map({mount: str_path for mount, str_path in table.items()})
        launch = images.Launch(
            pod_ip=self.pod_ip,
            command=[expand(part, env) for part in container.get("command") or ()],
            args=[expand(part, env) for part in container.get("args") or ()],
        )
        image = container.get("image", "")
        try:
            argv = images.command_for(image, launch)
        except ValueError as error:
            raise StartFailure("CreateContainerError", str(error)) from error
        if argv is None:
            known = ", ".join(images.known_patterns())
            raise StartFailure(
                "ErrImagePull",
                f'Failed to pull image "{image}": devstack has no local program for this image (known: {known})',
            )
        token_dir = table.get(SERVICE_ACCOUNT_DIR)
        if token_dir is not None and mountns.available():
            # In-cluster clients read the token and CA at the fixed path, as in a real container.
            argv = mountns.wrap(argv, str(token_dir), SERVICE_ACCOUNT_DIR)
        (self.directory / "tmp").mkdir(exist_ok=True)
        working_dir = container.get("workingDir")
        cwd = paths.resolve(working_dir, env[paths.ENV_VAR]) if working_dir else self.directory
        if not cwd.is_dir():
            cwd = self.directory
        if argv[0] == sys.executable:
            env.setdefault("PYTHONUNBUFFERED", "1")
        return Prepared(argv=argv, env=env, cwd=str(cwd))

    # -- status ------------------------------------------------------------

    def build_status(self) -> JSON:
        spec = self.pod.get("spec", {})
        init_statuses = [r.status() for r in self.init_runners]
        statuses = [r.status() for r in self.runners]
        phase = pod_phase(self.restart_policy, self.init_done or not self.init_runners, self.init_failed, statuses)
        if not self.init_done and self.init_runners:
            phase = "Failed" if self.init_failed else "Pending"
        terminal = phase in ("Succeeded", "Failed")
        gates = [g.get("conditionType", "") for g in spec.get("readinessGates") or ()]
        status: JSON = {
            "phase": phase,
            "hostIP": self.node.host_ip,
            "hostIPs": [{"ip": self.node.host_ip}],
            "startTime": self.start_time,
            "conditions": kubelet_conditions(
                self._conditions,
                sandbox_ready=self.sandbox_ready,
                init_done=self.init_done or not self.init_runners,
                statuses=statuses,
                readiness_gates=gates,
                existing=self.pod.get("status", {}).get("conditions") or (),
                terminal=terminal,
            ),
            "containerStatuses": statuses,
        }
        if init_statuses:
            status["initContainerStatuses"] = init_statuses
        if self.pod_ip:
            status["podIP"] = self.pod_ip
            status["podIPs"] = [{"ip": self.pod_ip}]
        return status

    async def _publish_forever(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            await self.publish()

    async def publish(self) -> None:
        if self._gone:
            return
        status = self.build_status()
        if status == self._last_sent:
            return
        meta = self.pod["metadata"]
        path = f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/status"
        try:
            await self.node.kube.merge_patch(path, {"metadata": {"uid": self.uid}, "status": status})
            self._last_sent = status
        except ApiError as error:
            if error.status in (404, 409):
                return  # the pod is gone or was replaced by one of the same name: nothing to report to
            log.warning("pod %s: status update failed: %s; retrying", self.key, error)
            await asyncio.sleep(1.0)  # retry pacing after an API error
            self.changed()

    # -- the end -----------------------------------------------------------

    async def halt(self) -> None:
        """The pod runner itself is stopping: end the processes, leave the pod object and its IP as they are."""
        self._gone = True
        grace = grace_seconds(self.pod)
        await asyncio.gather(*(r.stop(grace) for r in [*self.init_runners, *self.runners]))

    async def _shutdown(self, life: asyncio.Task[None]) -> None:
        grace = 2.0 if self._gone else grace_seconds(self.pod)
        log.info("pod %s: stopping with a grace period of %gs", self.key, grace)
        runners = [*self.init_runners, *self.runners]
        await asyncio.gather(*(r.stop(grace) for r in runners))
        life.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await life
        await self.publish()
        if not self._gone:
            meta = self.pod["metadata"]
            body = {"gracePeriodSeconds": 0, "preconditions": {"uid": self.uid}}
            try:
                await self.node.kube.delete(f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}", body)
            except ApiError as error:
                if error.status not in (404, 409):
                    raise
        self.release()

    def release(self) -> None:
        """Forget the pod on this node: its IP and its volumes (tokens, secrets); logs stay for post-mortems."""
        self.node.allocator.release(self.uid)
        remove_tree(self.directory / "volumes")
        remove_tree(self.directory / "tmp")
        with contextlib.suppress(OSError):
            (self.directory / "kubeconfig").unlink()
