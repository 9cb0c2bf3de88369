"""One container: its process, its probes, its restarts, and the status the kubelet would report for it.

The process runs in its own session (so its whole process group can be
signalled, as a container's processes die with it), with stdout and stderr
in ``logs/<container>/<restartCount>.log`` under the pod's directory.
Every change of state calls ``on_change`` so the pod publishes its status once,
only when something changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from devstack.podrunner.backoff import CrashBackoff
from devstack.podrunner.clock import now_rfc3339
from devstack.podrunner.kube import JSON
from devstack.podrunner.probes import (
    ProbeRole,
    ProbeSpec,
    ProbeTarget,
    ProbeTracker,
    parse_probe,
    run_probe,
)

log = logging.getLogger(__name__)
RestartPolicy = Literal["Always", "OnFailure", "Never"]


class StartFailure(Exception):
    """The container could not be started; ``reason`` is what the kubelet would put in state.waiting."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass
class Prepared:
    """Everything needed to exec the container once: argv, environment and working directory."""

    argv: Sequence[str]
    env: Mapping[str, str]
    cwd: str


@dataclass
class ContainerRunner:
    spec: JSON
    pod_ip: str
    log_dir: Path
    restart_policy: RestartPolicy
    on_change: Callable[[], None]
    # Builds argv/env for the next attempt, or raises StartFailure (ErrImagePull, CreateContainerConfigError, ...).
    prepare: Callable[[], Awaitable[Prepared]]
    pod_label: str = ""
    termination_grace: float = 30.0
    restart_count: int = 0
    state: JSON = field(default_factory=lambda: {"waiting": {"reason": "ContainerCreating"}})
    last_state: JSON = field(default_factory=dict)
    ready: bool = False
    started: bool = False
    pid: int | None = None
    container_id: str = ""
    _process: asyncio.subprocess.Process | None = None
    _stopping: bool = False
    _stopped: asyncio.Event = field(default_factory=asyncio.Event)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _kill_reason: str = ""
    _launched: bool = False

    @property
    def name(self) -> str:
        return str(self.spec["name"])

    @property
    def finished(self) -> bool:
        return self._stopped.is_set()

    def status(self) -> JSON:
        """containerStatuses[] entry, as the kubelet writes it."""
        image = self.spec.get("image", "")
        entry: JSON = {
            "name": self.name,
            "image": image,
            "imageID": f"devstack://{image}" if self.container_id else "",
            "ready": self.ready,
            "started": self.started,
            "restartCount": self.restart_count,
            "state": self.state,
            "lastState": self.last_state,
        }
        if self.container_id:
            entry["containerID"] = self.container_id
        return entry

    def _set(self, **changes: Any) -> None:
        for key, value in changes.items():
            setattr(self, key, value)
        self.on_change()

    # -- lifecycle ---------------------------------------------------------

    async def run(self, *, run_to_completion: bool = False) -> int | None:
        """Run, restarting per restartPolicy, until stopped or finished; return the last exit code."""
        self._launched = True
        crash_backoff = CrashBackoff()
        pull_backoff = CrashBackoff()
        exit_code: int | None = None
        try:
            while not self._stopping:
                try:
                    prepared = await self.prepare()
                except StartFailure as failure:
                    await self._wait_after_start_failure(failure, pull_backoff)
                    continue
                exit_code = await self._run_once(prepared)
                if self._stopping:
                    break
                if not self._should_restart(exit_code, run_to_completion):
                    break
                finished = time.time()
                delay = crash_backoff.delay_after_crash(finished, time.time())
                if delay > 0:
                    message = (
                        f"back-off {crash_backoff_label(delay)} restarting failed container={self.name} "
                        f"pod={self.pod_label}"
                    )
                    self._set(state={"waiting": {"reason": "CrashLoopBackOff", "message": message}})
                    await self._sleep_unless_stopped(delay)
                if not self._stopping:
                    self.restart_count += 1
            return exit_code
        finally:
            self._stopped.set()
            self.on_change()

    def _should_restart(self, exit_code: int, run_to_completion: bool) -> bool:
        if self.restart_policy == "Always" and not run_to_completion:
            return True
        return self.restart_policy in ("Always", "OnFailure") and exit_code != 0

    async def _wait_after_start_failure(self, failure: StartFailure, backoff: CrashBackoff) -> None:
        """ErrImagePull turns into ImagePullBackOff while waiting, as the kubelet reports it."""
        now = time.time()
        delay = backoff.delay_after_crash(now, now) or backoff.initial
        self._set(state={"waiting": {"reason": failure.reason, "message": failure.message}})
        if failure.reason == "ErrImagePull":
            image = self.spec.get("image", "")
            await self._sleep_unless_stopped(min(delay, 1.0))
            if self._stopping:
                return
            self._set(state={"waiting": {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{image}"'}})
            delay = max(0.0, delay - 1.0)
        await self._sleep_unless_stopped(delay)

    async def _sleep_unless_stopped(self, seconds: float) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def _run_once(self, prepared: Prepared) -> int:
        log_path = self.log_dir / self.name / f"{self.restart_count}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        started_at = now_rfc3339()
        try:
            with open(log_path, "ab") as log_file:
                process = await asyncio.create_subprocess_exec(
                    *prepared.argv,
                    env=dict(prepared.env),
                    cwd=prepared.cwd,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=asyncio.subprocess.STDOUT,
                    start_new_session=True,
                )
        except OSError as error:
            message = f"failed to start {prepared.argv[0]!r}: {error}"
            terminated = {"exitCode": 128, "reason": "StartError", "message": message}
            terminated.update(startedAt=started_at, finishedAt=now_rfc3339())
            self._set(state={"terminated": terminated}, ready=False, started=False)
            self.last_state = {"terminated": terminated}
            return 128
        self._process = process
        self._kill_reason = ""
        self._set(
            pid=process.pid,
            container_id=f"devstack://{process.pid}",
            state={"running": {"startedAt": started_at}},
            ready=False,
            started=False,
        )
        log.info("container %s of %s started: pid %d: %s", self.name, self.pod_label, process.pid, prepared.argv)
        target = ProbeTarget(pod_ip=self.pod_ip, env=prepared.env, cwd=prepared.cwd)
        probes = asyncio.create_task(self._probe_all(target), name=f"probes-{self.name}")
        try:
            returncode = await process.wait()
        finally:
            probes.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await probes
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)  # the container's other processes die with it
        exit_code = 128 - returncode if returncode < 0 else returncode
        reason = "Completed" if exit_code == 0 else "Error"
        terminated = {
            "exitCode": exit_code,
            "reason": reason,
            "startedAt": started_at,
            "finishedAt": now_rfc3339(),
            "containerID": self.container_id,
        }
        if returncode < 0:
            terminated["signal"] = -returncode
        if self._kill_reason:
            terminated["message"] = self._kill_reason
        log.info("container %s of %s exited with %d", self.name, self.pod_label, exit_code)
        self._process = None
        self.last_state = {"terminated": terminated}
        self._set(state={"terminated": terminated}, ready=False, started=False, pid=None)
        return exit_code

    async def stop(self, grace_seconds: float) -> None:
        """SIGTERM the process group, SIGKILL it after the grace period, and wait until it is gone."""
        self._stopping = True
        self._wake.set()
        if not self._launched:
            return
        process = self._process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(process.wait()), max(grace_seconds, 0.0))
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGKILL)
        await self._stopped.wait()

    async def _kill_for_restart(self, reason: str) -> None:
        """Liveness or startup failed: kill the container so restartPolicy decides what comes next."""
        process = self._process
        if process is None or process.returncode is not None:
            return
        self._kill_reason = reason
        grace = self.termination_grace
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(process.wait()), grace)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)

    # -- probes ------------------------------------------------------------

    def _probe_specs(self) -> dict[ProbeRole, ProbeSpec]:
        ports = self.spec.get("ports") or []
        specs: dict[ProbeRole, ProbeSpec] = {}
        for role, key in (("readiness", "readinessProbe"), ("liveness", "livenessProbe"), ("startup", "startupProbe")):
            if self.spec.get(key):
                specs[role] = parse_probe(self.spec[key], ports)  # type: ignore[index]
        return specs

    async def _probe_all(self, target: ProbeTarget) -> None:
        specs = self._probe_specs()
        running_since = time.monotonic()
        started = asyncio.Event()
        if "startup" not in specs:
            started.set()
            self._set(started=True, ready="readiness" not in specs)
        tasks = [
            asyncio.create_task(self._probe_loop(role, spec, target, running_since, started))
            for role, spec in specs.items()
        ]
        try:
            if tasks:
                await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()

    async def _probe_loop(
        self, role: ProbeRole, spec: ProbeSpec, target: ProbeTarget, running_since: float, started: asyncio.Event
    ) -> None:
        tracker = ProbeTracker.for_role(role, spec)
        if role != "startup":
            await started.wait()
        delay = running_since + spec.initial_delay - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)  # initialDelaySeconds: the kubelet does not probe before it
        while True:
            passed, message = await run_probe(spec, target)
            if tracker.observe(passed):
                log.info("%s probe of %s/%s: %s (%s)", role, self.pod_label, self.name, tracker.result, message)
                if role == "readiness":
                    self._set(ready=bool(tracker.result))
                elif role == "startup" and tracker.result:
                    started.set()
                    self._set(started=True, ready="readinessProbe" not in self.spec or not self.spec["readinessProbe"])
                    return
                elif not tracker.result:
                    await self._kill_for_restart(f"{role.capitalize()} probe failed: {message}")
                    return
            await asyncio.sleep(spec.period)  # periodSeconds: the probe's own schedule


def crash_backoff_label(seconds: float) -> str:
    """Go's duration format for whole seconds, as in the kubelet's message (10s, 1m20s, 5m0s)."""
    whole = round(seconds)
    minutes, secs = divmod(whole, 60)
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"
