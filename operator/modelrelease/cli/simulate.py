"""``modelrelease simulate``: replay a rollout on recorded (or synthetic) metrics with a virtual clock.

Why the real engine and the real analysis path: a team tries
``failureLimit``, margins and stage lengths on last week's metrics, and the
answer is only worth having if it is what the operator would decide.  So
each pass calls ``engine.decide`` exactly as reconcile does, and each check
it asks for goes through the operator's own ``measure.Analyzer.check`` (the
entry point reconcile calls: templates, judges, pooling and all), with a
metric provider that reads the series instead of Prometheus.  When the
judge changes, simulate follows.

What is simulated rather than replayed: pods start and load at once (after
``ready_after``), the smoke test scores ``smoke_accuracy``, and the router
reaches every weight it is asked for.  Nothing is written anywhere.

The metric series (CSV, one row per sample; ``docs`` in the README):

``seconds``
    time of the sample, in seconds since the rollout started (the candidate
    version was applied); rows may come in any order.
``role``
    ``candidate`` or ``stable``: the series replays for any version numbers.
``metric``
    the metric's ``name`` in ``spec.analysis.metrics``.
``numerator``, ``denominator``
    cumulative counters, as Prometheus counters are (errors and requests,
    correct and all outcomes, ...): a check over a window reads their
    increase, as ``increase(...[window])`` does.  ``denominator`` is also the
    sample count a value metric rests on (may be empty).
``value``
    for a metric that is one number (latency p99 in seconds, a plain
    ``query``): its value at that time; empty for ratios.
"""

from __future__ import annotations

import asyncio
import bisect
import csv
import math
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

from modelrelease.analysis import Measurement, Observation, TemplateValues, Unmeasured, plan_for
from modelrelease.api import ModelReleaseSpec, ModelReleaseStatus, Phase
from modelrelease.api.duration import parse_duration
from modelrelease.api.spec import MetricSpec
from modelrelease.engine import (
    AnalysisResult,
    Decision,
    DeploymentState,
    EngineSettings,
    Observations,
    RouteObservation,
    RunAnalysis,
    RunSmoke,
    decide,
)
from modelrelease.engine.actions import EmitEvent, EnsureDeployment, FixedReplicas, ScaleToZero, SetRoute
from modelrelease.engine.observations import ModelLoad, ModelState, Request, SmokeResult
from modelrelease.measure import Analyzer

CSV_COLUMNS = ("seconds", "role", "metric", "numerator", "denominator", "value")
T0 = datetime(2026, 1, 1, tzinfo=UTC)
SIM_ADDRESS = "simulate://series"
NAMESPACE = "simulate"


class SeriesError(ValueError):
    """A CSV the simulation cannot read: names the line."""


@dataclass
class Sample:
    seconds: float
    numerator: float | None
    denominator: float | None
    value: float | None


@dataclass
class Series:
    """Samples per (role, metric), sorted by time."""

    samples: dict[tuple[str, str], list[Sample]] = field(default_factory=dict)

    def add(self, role: str, metric: str, sample: Sample) -> None:
        self.samples.setdefault((role, metric), []).append(sample)

    def finish(self) -> Series:
        for rows in self.samples.values():
            rows.sort(key=lambda s: s.seconds)
        return self

    @property
    def end(self) -> float:
        return max((rows[-1].seconds for rows in self.samples.values() if rows), default=0.0)

    def metrics(self) -> set[str]:
        return {metric for _, metric in self.samples}


def read_series(lines: Iterable[str], source: str = "metrics") -> Series:
    reader = csv.DictReader(lines)
    missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise SeriesError(f"{source}: missing column(s) {', '.join(missing)} (need {','.join(CSV_COLUMNS)})")
    series = Series()
    for number, row in enumerate(reader, start=2):
        try:
            role = row["role"].strip()
            if role not in ("candidate", "stable"):
                raise ValueError(f"role is {role!r}: candidate or stable")
            sample = Sample(
                float(row["seconds"]), _number(row["numerator"]), _number(row["denominator"]), _number(row["value"])
            )
        except (ValueError, TypeError) as error:
            raise SeriesError(f"{source}:{number}: {error}") from error
        series.add(role, row["metric"].strip(), sample)
    return series.finish()


def _number(text: str | None) -> float | None:
    text = (text or "").strip()
    return float(text) if text else None


def synthetic_series(
    metrics: list[MetricSpec],
    candidate: dict[str, float],
    stable: dict[str, float],
    seconds: int,
    requests_per_second: float,
    seed: int = 1,
) -> Series:
    """Counters drawn second by second: each request a success with the metric's rate (value metrics: the rate)."""
    rng = random.Random(seed)
    series = Series()
    for role, rates in (("candidate", candidate), ("stable", stable)):
        for metric in metrics:
            rate = rates.get(metric.name)
            if rate is None:
                continue
            ratio = plan_for(metric).is_ratio
            numerator = denominator = 0.0
            for second in range(seconds + 1):
                if second:
                    count = _poisson(rng, requests_per_second)
                    denominator += count
                    numerator += sum(1 for _ in range(count) if rng.random() < rate) if ratio else 0
                value = None if ratio else rate
                series.add(role, metric.name, Sample(float(second), numerator if ratio else None, denominator, value))
    return series.finish()


def _poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method; means here are requests per second, small enough."""
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


class SeriesProvider:
    """A ``MetricProvider`` over a series, at the simulation's current virtual time."""

    def __init__(self, series: Series, candidate_version: int) -> None:
        self.series = series
        self.candidate_version = candidate_version
        self.now_seconds = 0.0

    async def measure(self, metric: MetricSpec, values: TemplateValues, at: datetime | None = None) -> Observation:
        """The series' increase over the window ending ``at`` (the virtual now when None), as Prometheus would give it."""
        role = "candidate" if values.version == self.candidate_version else "stable"
        rows = self.series.samples.get((role, metric.name))
        if not rows:
            return Unmeasured(f"no series for {role} {metric.name}")
        window = parse_duration(values.interval).total_seconds()
        now_seconds = self.now_seconds if at is None else (at - T0).total_seconds()
        end, start = self._at(rows, now_seconds), self._at(rows, now_seconds - window)
        if end is None:
            return Unmeasured(f"no {role} data yet")
        plan = plan_for(metric)
        begin = start or Sample(0.0, 0.0, 0.0, None)
        requests = _increase(begin.denominator, end.denominator)
        if plan.is_ratio:
            successes = _increase(begin.numerator, end.numerator)
            if requests is None or successes is None or requests <= 0:
                return Unmeasured("no data in the window")
            successes = min(successes, requests)
            return Measurement(
                value=successes / requests,
                samples=round(requests),
                numerator=successes,
                denominator=requests,
                proportion=plan.proportion,
            )
        if end.value is None or end.seconds < now_seconds - window:
            return Unmeasured("no data in the window")
        return Measurement(value=end.value, samples=round(requests) if requests is not None else None)

    @staticmethod
    def _at(rows: list[Sample], seconds: float) -> Sample | None:
        index = bisect.bisect_right([r.seconds for r in rows], seconds)
        return rows[index - 1] if index else None


def _increase(before: float | None, after: float | None) -> float | None:
    if after is None:
        return None
    return max(0.0, after - (before or 0.0))


@dataclass(frozen=True)
class Happening:
    """One line of the simulation's story."""

    seconds: float
    kind: str
    """``event`` (what the operator would post), ``check`` (a check's verdicts), ``stage`` or ``phase`` (changes)."""
    reason: str
    message: str

    def line(self) -> str:
        minutes, seconds = divmod(int(self.seconds), 60)
        return f"+{minutes:02d}:{seconds:02d}  {self.reason:<22} {self.message}"


@dataclass
class SimulationResult:
    happenings: list[Happening]
    status: ModelReleaseStatus
    ended_at: float
    candidate: int

    @property
    def decisions(self) -> list[tuple[str, str | None]]:
        """The candidate's history outcomes and stages, in order: what the real rollout's status.history holds."""
        return [(h.outcome, h.stage) for h in self.status.history if h.version == self.candidate]

    @property
    def exit_code(self) -> int:
        if self.status.phase == Phase.SUCCEEDED:
            return 0
        if self.status.phase in (Phase.ROLLED_BACK, Phase.FAILED):
            return 1
        return 2


@dataclass
class _World:
    spec: ModelReleaseSpec
    stable: int
    ready_after: float
    smoke_accuracy: float
    deployments: dict[int, DeploymentState] = field(default_factory=dict)
    created: dict[int, float] = field(default_factory=dict)
    route: tuple[int, int] = (0, 0)

    def observations(self, seconds: float, candidate: int | None) -> Observations:
        ready = {
            v: replace(d, ready=d.desired if seconds - self.created.get(v, 0.0) >= self.ready_after else 0)
            for v, d in self.deployments.items()
        }
        model = None
        if candidate is not None and candidate in ready:
            state: ModelState = "AVAILABLE" if ready[candidate].ready else "LOADING"
            model = ModelLoad(candidate, state, loading_since=T0 + timedelta(seconds=self.created[candidate]))
        weight, mirror = self.route
        return Observations(
            deployments=tuple(ready[v] for v in sorted(ready)),
            model=model,
            route=RouteObservation(weight=weight, mirror=mirror, reached=True),
        )

    def apply(self, seconds: float, decision: Decision) -> None:
        for action in decision.actions:
            if isinstance(action, EnsureDeployment):
                count = (
                    action.replicas.count
                    if isinstance(action.replicas, FixedReplicas)
                    else max(1, math.ceil(action.replicas.full * action.replicas.percent / 100))
                )
                previous = self.deployments.get(action.version)
                if previous is None or previous.desired == 0:
                    self.created[action.version] = seconds
                created_at = T0 + timedelta(seconds=self.created[action.version])
                self.deployments[action.version] = DeploymentState(action.version, count, 0, created_at)
            elif isinstance(action, ScaleToZero) and action.version in self.deployments:
                self.deployments[action.version] = replace(self.deployments[action.version], desired=0, ready=0)
            elif isinstance(action, SetRoute):
                self.route = (action.weight, action.mirror)


def simulate(
    spec: ModelReleaseSpec,
    series: Series,
    stable_version: int,
    *,
    until: float | None = None,
    step: float = 1.0,
    ready_after: float = 5.0,
    smoke_accuracy: float = 1.0,
    approve: bool = False,
    name: str = "release",
) -> SimulationResult:
    """Run the rollout of ``spec.model.version`` against ``stable_version``, pass by pass, on virtual time."""
    candidate = spec.model.version
    if candidate == stable_version:
        raise ValueError(f"spec.model.version {candidate} is the stable version: nothing to roll out")
    provider = SeriesProvider(series, candidate)
    # The series stands in for Prometheus at the one address the analyzer is given.
    analyzer = Analyzer(SIM_ADDRESS, providers={SIM_ADDRESS: provider})
    world = _World(spec, stable_version, ready_after, smoke_accuracy)
    world.deployments[stable_version] = DeploymentState(stable_version, spec.serving.replicas, 0, T0)
    world.created[stable_version] = -ready_after
    status = ModelReleaseStatus(phase=Phase.SUCCEEDED, stable_version=stable_version, message="")
    end = until if until is not None else series.end
    happenings: list[Happening] = []
    seconds = 0.0
    phase = status.phase
    shown_stage: tuple[int, str] | None = None
    # Queries go to the series, whatever Prometheus the release names.
    prometheus = spec.analysis.prometheus.model_copy(update={"address": None})
    measured_spec = spec.model_copy(update={"analysis": spec.analysis.model_copy(update={"prometheus": prometheus})})
    loop = asyncio.new_event_loop()
    try:
        while seconds <= end:
            now = T0 + timedelta(seconds=seconds)
            provider.now_seconds = seconds
            observed = world.observations(seconds, status.candidate_version)
            requests: tuple[Request, ...] = ()
            if approve and status.phase == Phase.AWAITING_APPROVAL and status.stage is not None:
                requests = (Request("approve", status.stage.name),)
            decision = decide(spec, status, replace(observed, requests=requests), now, 1, EngineSettings())
            follow_up = decision.follow_up()
            if isinstance(follow_up, RunSmoke):
                smoke = SmokeResult(follow_up.version, smoke_accuracy, 100)
                again = replace(observed, smoke=smoke)
                decision = decision.followed_by(decide(spec, decision.status, again, now, 1, EngineSettings()))
            elif isinstance(follow_up, RunAnalysis):
                analysis = loop.run_until_complete(analyzer.check(NAMESPACE, name, measured_spec, follow_up))
                happenings.append(_check_line(seconds, follow_up, analysis))
                again = replace(observed, analysis=analysis)
                decision = decision.followed_by(decide(spec, decision.status, again, now, 1, EngineSettings()))
            world.apply(seconds, decision)
            status = decision.status
            happenings.extend(
                Happening(seconds, "event", a.reason, a.message) for a in decision.actions if isinstance(a, EmitEvent)
            )
            stage = status.stage
            if stage is not None and status.candidate_version is not None and (stage.index, stage.name) != shown_stage:
                shown_stage = (stage.index, stage.name)
                what = (
                    f"weight {stage.weight}%"
                    if stage.weight
                    else f"mirror {stage.mirror}%"
                    if stage.mirror
                    else "no traffic"
                )
                happenings.append(Happening(seconds, "stage", f"stage {stage.name}", f"starts ({what})"))
            if status.phase != phase:
                happenings.append(Happening(seconds, "phase", f"phase {status.phase}", status.message))
                phase = status.phase
            if seconds > 0 and status.phase in (Phase.SUCCEEDED, Phase.ROLLED_BACK, Phase.FAILED):
                break
            seconds += step
    finally:
        loop.close()
    return SimulationResult(happenings, status, seconds, candidate)


def _check_line(seconds: float, request: RunAnalysis, analysis: AnalysisResult) -> Happening:
    verdicts = [m.verdict for m in analysis.metrics]
    overall = "fail" if "fail" in verdicts else "inconclusive" if "inconclusive" in verdicts else "pass"
    parts = []
    for metric in analysis.metrics:
        value = f"{metric.candidate:.4g}" if metric.candidate is not None else "-"
        base = f" vs {metric.baseline:.4g}" if metric.baseline is not None else ""
        samples = f" n={metric.samples}" if metric.samples is not None else ""
        why = f" ({metric.message})" if metric.verdict != "pass" and metric.message else ""
        parts.append(f"{metric.name}={metric.verdict} {value}{base}{samples}{why}")
    return Happening(seconds, "check", f"check {overall}", f"stage {request.stage}: " + "; ".join(parts))


def story(result: SimulationResult, verbose: bool = False) -> Iterator[str]:
    for happening in result.happenings:
        if happening.kind == "check" and not verbose:
            continue  # a failed check's reason is in the CheckFailed / AnalysisFailed event
        yield happening.line()
    final = result.status
    minutes, seconds = divmod(int(result.ended_at), 60)
    outcome = {0: "promoted", 1: "rolled back", 2: "undecided when the series ended"}[result.exit_code]
    yield f"after {minutes}m{seconds:02d}s (virtual): {outcome}; phase {final.phase}: {final.message}"


def write_story(result: SimulationResult, stream: IO[str], verbose: bool = False) -> None:
    for line in story(result, verbose):
        stream.write(line + "\n")


def load_series(path: Path) -> Series:
    with path.open(newline="") as handle:
        return read_series(handle, str(path))
