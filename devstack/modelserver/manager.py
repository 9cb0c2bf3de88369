"""TF Serving's version lifecycle: poll the base paths, aspire versions by policy, load, serve, unload.

A version moves START -> LOADING -> AVAILABLE -> UNLOADING -> END; a load that
fails (after ``max_num_load_retries`` retries, ``load_retry_interval`` apart,
LOADING all the while) goes to END with the load error as its status, which is
what ServableStateMonitor reports and GetModelStatus returns.  Loads run on one
background thread, so the server answers (LOADING) from the first moment.
Unloading follows the availability-preserving policy: a version that is no
longer aspired is unloaded only once an aspired version is AVAILABLE, so a bad
new version never takes the old one down.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from devstack import paths
from devstack.modelserver.config import ModelConfig
from devstack.modelserver.metrics import ServingMetrics
from devstack.modelserver.status import Code, ServingError, from_exception, invalid_argument, not_found

log = logging.getLogger("devstack.modelserver")

START, LOADING, AVAILABLE, UNLOADING, END = "START", "LOADING", "AVAILABLE", "UNLOADING", "END"


class Loadable(Protocol):
    name: str
    version: int


Loader = Callable[[str, int, Path], Loadable]


@dataclass
class VersionState:
    version: int
    state: str = START
    error: ServingError | None = None
    servable: Loadable | None = None


def versions_on_disk(base_path: Path) -> list[int]:
    """Numeric child directories, as TF Serving's file-system source sees them."""
    try:
        children = list(base_path.iterdir())
    except OSError:
        return []
    return sorted(int(c.name) for c in children if c.name.isdigit() and c.is_dir())


class ServableManager:
    def __init__(
        self,
        models: list[ModelConfig],
        loader: Loader,
        metrics: ServingMetrics,
        poll_seconds: float = 1.0,
        max_load_retries: int = 5,
        retry_interval_seconds: float = 60.0,
    ) -> None:
        self._models = {m.name: m for m in models}
        self._loader = loader
        self._metrics = metrics
        self._poll_seconds = poll_seconds
        self._max_load_retries = max(0, max_load_retries)
        self._retry_interval = max(0.0, retry_interval_seconds)
        self._states: dict[str, dict[int, VersionState]] = {m.name: {} for m in models}
        self._lock = threading.Lock()
        self._loads: queue.Queue[tuple[str, int, Path] | None] = queue.Queue()
        self._stop = threading.Event()
        self._changed = threading.Event()
        self._threads: list[threading.Thread] = []

    # --- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        self.poll_once()
        self._threads = [
            threading.Thread(target=self._load_loop, name="load", daemon=True),
            threading.Thread(target=self._poll_loop, name="poll", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._changed.set()
        self._loads.put(None)
        for thread in self._threads:
            thread.join(timeout=5)

    def reload(self, models: list[ModelConfig]) -> None:
        """HandleReloadConfigRequest: new models get polled, removed ones unloaded."""
        with self._lock:
            self._models = {m.name: m for m in models}
            for name in self._models:
                self._states.setdefault(name, {})
        self.poll_once()

    # --- polling and policy --------------------------------------------------------

    def _poll_loop(self) -> None:
        # TF Serving: a poll wait of 0 (or less) means the file system is checked once, at start.
        while self._poll_seconds > 0 and not self._stop.wait(self._poll_seconds):
            self.poll_once()

    def poll_once(self) -> None:
        with self._lock:
            models = dict(self._models)
            known = list(self._states)
        for name in known:
            config = models.get(name)
            if config is None:
                self._apply(name, None, [])
                continue
            base = paths.resolve(config.base_path)
            self._apply(name, base, config.policy.aspired(versions_on_disk(base)))

    def _apply(self, name: str, base: Path | None, aspired: list[int]) -> None:
        to_load: list[tuple[str, int, Path]] = []
        to_unload: list[VersionState] = []
        with self._lock:
            states = self._states.setdefault(name, {})
            for version in aspired:
                current = states.get(version)
                if current is None or (current.state == END and current.error is None):
                    states[version] = VersionState(version)  # START
                    assert base is not None
                    to_load.append((name, version, base / str(version)))
            any_aspired_available = any(states[v].state == AVAILABLE for v in aspired if v in states)
            for version, state in states.items():
                if version in aspired or state.state != AVAILABLE:
                    continue
                if any_aspired_available or not aspired:
                    state.state = UNLOADING
                    to_unload.append(state)
        for item in to_load:
            self._loads.put(item)
        for state in to_unload:
            log.info("Unloading servable version {name: %s version: %d}", name, state.version)
            with self._lock:
                state.servable = None
                state.state = END
                state.error = None

    # --- loading -------------------------------------------------------------------

    def _set(self, name: str, version: int, **changes: object) -> None:
        with self._lock:
            state = self._states.get(name, {}).get(version)
            if state is not None:
                for key, value in changes.items():
                    setattr(state, key, value)
        self._changed.set()

    def _load_loop(self) -> None:
        while not self._stop.is_set():
            item = self._loads.get()
            if item is None:
                return
            name, version, path = item
            self._load(name, version, path)
            self.poll_once()  # a new AVAILABLE version may let an old one unload

    def _load(self, name: str, version: int, path: Path) -> None:
        self._set(name, version, state=LOADING)
        log.info("Loading servable version {name: %s version: %d} from %s", name, version, path)
        attempts = 1 + self._max_load_retries
        error = ServingError(Code.UNKNOWN, "not loaded")
        for attempt in range(attempts):
            started = time.monotonic()
            try:
                servable = self._loader(name, version, path)
            except Exception as caught:
                error = from_exception(caught)
                self._metrics.load_attempt_count.inc(str(path), "fail")
                log.error(
                    "Loading servable: {name: %s version: %d} failed: %s: %s",
                    name,
                    version,
                    error.code.name,
                    error.message,
                )
                if attempt + 1 < attempts:
                    log.info("Retrying load of {name: %s version: %d} (attempt %d)", name, version, attempt + 2)
                    if self._stop.wait(self._retry_interval):
                        return
                continue
            micros = (time.monotonic() - started) * 1e6
            self._metrics.load_attempt_count.inc(str(path), "success")
            self._metrics.load_latency.inc(str(path), amount=round(micros))
            self._set(name, version, state=AVAILABLE, servable=servable, error=None)
            log.info("Successfully loaded servable version {name: %s version: %d}", name, version)
            return
        self._set(name, version, state=END, error=error, servable=None)

    # --- queries -------------------------------------------------------------------

    def resolve_label(self, name: str, label: str) -> int:
        with self._lock:
            config = self._models.get(name)
            version = config.version_labels.get(label) if config else None
        if version is None:
            raise invalid_argument(f"Unrecognized servable version label: {label}")
        return version

    def servable(self, name: str, version: int | None = None) -> Loadable:
        """GetServableHandle: the requested (or the newest AVAILABLE) version, or NOT_FOUND."""
        with self._lock:
            states = self._states.get(name, {})
            if version is None:
                ready = [s for s in states.values() if s.state == AVAILABLE and s.servable is not None]
                if ready:
                    return max(ready, key=lambda s: s.version).servable  # type: ignore[return-value]
                raise not_found(f"Servable not found for request: Latest({name})")
            state = states.get(version)
            if state is not None and state.state == AVAILABLE and state.servable is not None:
                return state.servable
        raise not_found(f"Servable not found for request: Specific({name}, {version})")

    def status(self, name: str, version: int | None = None) -> list[VersionState]:
        """GetModelStatus: every version the monitor has seen (including END), or NOT_FOUND."""
        with self._lock:
            states = self._states.get(name, {})
            if version is not None:
                state = states.get(version)
                if state is None:
                    raise not_found(f"Could not find version {version} of model {name}")
                return [VersionState(state.version, state.state, state.error)]
            if not states:
                raise not_found(f"Could not find any versions of model {name}")
            return [VersionState(s.version, s.state, s.error) for s in sorted(states.values(), key=lambda s: s.version)]

    def wait_until_settled(self, timeout: float) -> bool:
        """True once no version is START or LOADING (for startup logs and tests in-process)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                busy = any(s.state in (START, LOADING) for m in self._states.values() for s in m.values())
            if not busy:
                return True
            self._changed.clear()
            self._changed.wait(min(0.2, max(0.0, deadline - time.monotonic())))
        return False
