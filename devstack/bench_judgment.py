"""`make bench-judgment`: how often each judge rolls a good model back, and how long a bad one keeps serving.

Why a simulation: a judge's error rates depend on how many times it looks,
how much traffic each look sees and how long a stage runs, and no cluster run
repeats a stage thousands of times.  Request streams are drawn here with
numpy, thousands of stages per cell, and four judges decide on the very same
streams side by side:

- **ours**: the operator's judge (``modelrelease.analysis.check``, whose
  proportions are ``modelrelease.analysis.sequential``) on counts pooled since the
  stage began, checked every 30 s, alpha = 1 - confidence (0.99) split over
  the stage's four bounds (``check.alpha_for``); one fail rolls back; promoted
  when every bound passes at the end of the stage.  A vectorised copy of its arithmetic runs
  the thousands of stages and is checked, cell by cell, against the operator's
  own functions on sampled checks (the run stops if they ever disagree).
- **per-interval** (the operator's judge before the sequential one, still its
  threshold judge): ``modelrelease.analysis.judge.judge`` on each 30 s
  interval's counts, ``failureLimit: 2``, promoted after ``minChecks: 3``
  passing checks.  Latency is judged as today's ``histogram_quantile()``
  check is: p99 above 250 ms exactly when more than 1% of the interval's
  requests were slower (the limit on a bucket boundary), on the point value.
- **Flagger-like**: every minute, the last minute's point values against
  fixed thresholds; rollback at 5 failed checks, counted over the stage.
- **Argo-Rollouts-like**: every 30 s, the interval's point values against the
  same thresholds; rollback when failures exceed ``failureLimit: 2``.

The stage judges three metrics at once, as a real one does (bad-outcome
rates of the stable version in brackets): accuracy (5% wrong answers;
``compareToBaseline.maxDrop: 0.01``), error rate (1%; ``max: 0.05`` and
``maxIncrease: 0.005``) and latency as the share slower than 250 ms (0.7%;
``p99 <= 250ms``, i.e. ``max: 0.01``).  The fixed thresholds of the Flagger-
and Argo-like judges are the same limits written as absolute values:
accuracy >= 0.94, errors <= 1.5%, slow share <= 1%.  Each version gets the
same fixed number of requests per second (an even split); outcomes are
binomial per interval.

The exposure section compares ours with the fixed-threshold (Flagger-like)
judge on accuracy alone, with the fixed threshold tuned on the same good
streams to roll back as often as ours does (at least 0.25%, for a stable
estimate), and does the same for ours with the previous fail-side mixture
(the half-normal).  The floor section computes, for false-rollback rates up
to 1%, the least median exposure any judge could have (the best fixed-sample
test's) over the fixed judge's tuned to that rate: where it is above 1/3,
no judge meets the target.

Results go to stdout and to the "Judgment" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from scipy.special import log_ndtr

from devstack.benchdoc import DOCS, write_section
from modelrelease.analysis.check import alpha_for
from modelrelease.analysis.judge import judge as todays_judge
from modelrelease.analysis.provider import Measurement
from modelrelease.analysis.sequential import (
    FAIL_CENTRE_SCALE,
    FAIL_TAU_SCALE,
    FAIL_WIDE_SHARE,
    FAIL_WIDE_TAU_SCALE,
    MIN_EVENTS,
    TAU_SCALE,
    Counts,
    against_bound,
    against_stable,
    split_alpha,
)
from modelrelease.api.spec import MetricSpec

Ints = NDArray[np.int64]
Floats = NDArray[np.float64]
Bools = NDArray[np.bool_]

CHECK_SECONDS = 30
FLAGGER_SECONDS = 60
RATES = (1, 10, 100)
STAGES = {"10 min": 600, "1 h": 3600}
CONFIDENCE = 0.99
FAILURE_LIMIT_TODAY = 2  # the engine rolls back at failures >= failureLimit
MIN_CHECKS_TODAY = 3
FLAGGER_FAILED_CHECKS = 5
ARGO_FAILURE_LIMIT = 2  # Argo Rollouts fails the analysis when failures > failureLimit
TUNING_FLOOR = 0.0025


@dataclass(frozen=True)
class Bound:
    kind: str  # maxDrop | maxIncrease | max (in bad-outcome terms: min and maxDrop turn into max and a rise)
    limit: float  # in bad-outcome rate


@dataclass(frozen=True)
class Metric:
    name: str
    stable: float  # the stable version's bad-outcome rate
    bounds: tuple[Bound, ...]
    fixed_threshold: float  # largest bad-outcome rate a fixed-threshold judge accepts in one window
    spec: MetricSpec = field(compare=False)


METRICS = (
    Metric(
        "accuracy",
        0.05,
        (Bound("maxDrop", 0.01),),
        0.06,
        MetricSpec.model_validate({"name": "accuracy", "template": "accuracy", "compareToBaseline": {"maxDrop": 0.01}}),
    ),
    Metric(
        "error-rate",
        0.01,
        (Bound("max", 0.05), Bound("maxIncrease", 0.005)),
        0.015,
        MetricSpec.model_validate(
            {
                "name": "error-rate",
                "template": "tfserving-error-rate",
                "max": 0.05,
                "compareToBaseline": {"maxIncrease": 0.005},
            }
        ),
    ),
    Metric(
        "latency",
        0.007,
        (Bound("max", 0.01),),
        0.01,
        MetricSpec.model_validate({"name": "latency-p99", "template": "tfserving-latency-p99", "max": 0.25}),
    ),
)
BOUNDS = sum(len(m.bounds) for m in METRICS)

Rates = dict[str, tuple[float, float]]  # metric -> bad-outcome rate at the start and at the end of the stage


@dataclass(frozen=True)
class Scenario:
    name: str
    truth: str  # good | margin | bad
    candidate: Rates
    stable: Rates


def _steady(**changes: float) -> Rates:
    rates = {m.name: (m.stable, m.stable) for m in METRICS}
    for name, value in changes.items():
        rates[name.replace("_", "-")] = (value, value)
    return rates


DRIFT: Rates = {"accuracy": (0.05, 0.08), "error-rate": (0.01, 0.02), "latency": (0.007, 0.0095)}
SCENARIOS = (
    Scenario("same as stable", "good", _steady(), _steady()),
    Scenario("both drift (acc -3 pts, errors x2, slow +36%)", "good", DRIFT, DRIFT),
    Scenario("accuracy -1 pt (= maxDrop)", "margin", _steady(accuracy=0.06), _steady()),
    Scenario("accuracy -2 pts", "bad", _steady(accuracy=0.07), _steady()),
    Scenario("accuracy -5 pts", "bad", _steady(accuracy=0.10), _steady()),
    Scenario("accuracy -10 pts", "bad", _steady(accuracy=0.15), _steady()),
    Scenario("errors x2", "bad", _steady(error_rate=0.02), _steady()),
    Scenario("errors x5", "bad", _steady(error_rate=0.05), _steady()),
    Scenario("slow share x2", "bad", _steady(latency=0.014), _steady()),
)
JUDGES = ("ours", "today", "Flagger-like", "Argo-like")


# -- request streams -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Streams:
    """Bad outcomes per 30 s interval, per metric: (runs, checks) arrays for candidate and stable."""

    per_interval: int
    candidate: dict[str, Ints]
    stable: dict[str, Ints]


def simulate(rng: np.random.Generator, scenario: Scenario, rate: int, seconds: int, runs: int) -> Streams:
    checks = seconds // CHECK_SECONDS
    n = rate * CHECK_SECONDS
    middle = (np.arange(checks) + 0.5) / checks

    def draw(start_end: tuple[float, float]) -> Ints:
        start, end = start_end
        return rng.binomial(n, start + (end - start) * middle, size=(runs, checks)).astype(np.int64)

    return Streams(
        n,
        {m.name: draw(scenario.candidate[m.name]) for m in METRICS},
        {m.name: draw(scenario.stable[m.name]) for m in METRICS},
    )


# -- ours, vectorised --------------------------------------------------------------------------


Mixture = tuple[float, float, float]
"""The fail side's mixing distribution: (scale, centre) of its main part in per-request SDs, and the wide part's share."""
OURS: Mixture = (FAIL_TAU_SCALE, FAIL_CENTRE_SCALE, FAIL_WIDE_SHARE)
CENTRED: Mixture = (FAIL_TAU_SCALE, FAIL_CENTRE_SCALE, 0.0)  # before the wide part
HALF_NORMAL: Mixture = (TAU_SCALE, 0.0, 0.0)  # the fail side before the centred mixture: the same as the pass side


def _ln_evidence(excess: Floats, variance: Floats, tau: Floats, centre: Floats) -> Floats:
    """``sequential.log_evidence`` on arrays (the truncated-normal mixture; centre 0 is the half-normal)."""
    root_precision = np.sqrt(1.0 / variance + 1.0 / (tau * tau))
    y = (excess / variance + centre / (tau * tau)) / root_precision
    z = centre / tau
    result: Floats = log_ndtr(y) + 0.5 * (y - z) * (y + z) - 0.5 * np.log1p(tau * tau / variance) - log_ndtr(z)
    return result


def ours_bound(
    bound: Bound,
    c_bad: Floats,
    n_c: Floats,
    s_bad: Floats,
    n_s: Floats,
    alpha: float,
    fail_mixture: Mixture = OURS,
) -> tuple[Bools, Bools]:
    """(fail, pass) for every check: the arithmetic of ``sequential.against_stable``/``against_bound``, on arrays."""
    with np.errstate(divide="ignore", invalid="ignore"):
        r_c = c_bad / n_c
        if bound.kind == "max":
            q = bound.limit
            enough = n_c >= MIN_EVENTS / min(q, 1 - q)
            shown_bad = (q < 0.5) & (c_bad >= MIN_EVENTS)  # an early fail only (sequential._shown_bad)
            variance = np.maximum(r_c * (1 - r_c), q * (1 - q)) / n_c
            scale = np.full_like(r_c, math.sqrt(q * (1 - q)))
            excess = r_c - q
        else:
            margin = bound.limit
            r_s0 = np.clip((c_bad + s_bad - n_c * margin) / (n_c + n_s), 0.0, 1.0 - margin)
            r_c0 = r_s0 + margin
            mid = r_s0 + margin / 2
            rarer = np.minimum(mid, 1 - mid)
            needed = np.where(rarer > 0, MIN_EVENTS / np.where(rarer > 0, rarer, 1.0), np.inf)
            enough = (n_c >= needed) & (n_s >= needed)
            shown_bad = (mid < 0.5) & (c_bad >= MIN_EVENTS) & (n_s >= needed)
            r_s = s_bad / n_s
            plug_in = r_c * (1 - r_c) / n_c + r_s * (1 - r_s) / n_s
            at_margin = r_c0 * (1 - r_c0) / n_c + r_s0 * (1 - r_s0) / n_s
            variance = np.maximum(plug_in, at_margin)
            scale = np.sqrt(r_c0 * (1 - r_c0) + r_s0 * (1 - r_s0))
            excess = r_c - r_s - margin
        worse = excess > 0
        tau = np.where(worse, fail_mixture[0], TAU_SCALE) * scale
        centre = np.where(worse, fail_mixture[1], 0.0) * scale
        ln_evidence = _ln_evidence(np.abs(excess), variance, tau, centre)
        share = fail_mixture[2]
        if share > 0:  # sequential.mixture_log_evidence: the weighted sum of the two parts' ratios
            wide = _ln_evidence(np.abs(excess), variance, FAIL_WIDE_TAU_SCALE * scale, np.zeros_like(scale))
            both = np.logaddexp(math.log1p(-share) + ln_evidence, math.log(share) + wide)
            ln_evidence = np.where(worse, both, ln_evidence)
        convinced = ln_evidence >= math.log(1 / alpha)
    return convinced & (excess > 0) & (enough | shown_bad), convinced & (excess < 0) & enough


def _operators_verdict(
    metric: Metric, bound: Bound, c_bad: float, n_c: float, s_bad: float, n_s: float, alpha: float
) -> str:
    """The operator's own function on the same counts, in the metric's orientation."""
    if metric.name == "accuracy":  # counts of correct answers, a drop
        return against_stable(
            metric.name, Counts(n_c - c_bad, n_c), Counts(n_s - s_bad, n_s), "maxDrop", bound.limit, alpha
        ).verdict
    if bound.kind == "max":
        return against_bound(metric.name, Counts(c_bad, n_c), "max", bound.limit, alpha).verdict
    return against_stable(
        metric.name, Counts(c_bad, n_c), Counts(s_bad, n_s), "maxIncrease", bound.limit, alpha
    ).verdict


def ours(
    streams: Streams, alpha: float, rng: np.random.Generator | None = None, fail_mixture: Mixture = OURS
) -> tuple[Ints, Bools]:
    """First failing check per run (-1: none) and whether every bound passed at the last check."""
    runs, checks = next(iter(streams.candidate.values())).shape
    trials = (streams.per_interval * np.arange(1, checks + 1, dtype=np.float64))[None, :].repeat(runs, axis=0)
    failing = np.zeros((runs, checks), dtype=bool)
    passing = np.ones(runs, dtype=bool)
    for metric in METRICS:
        c = streams.candidate[metric.name].cumsum(axis=1).astype(np.float64)
        s = streams.stable[metric.name].cumsum(axis=1).astype(np.float64)
        for bound in metric.bounds:
            fail, ok = ours_bound(bound, c, trials, s, trials, alpha, fail_mixture)
            failing |= fail
            passing &= ok[:, -1]
            if rng is not None:
                _check_against_operator(rng, metric, bound, c, s, trials, fail, ok, alpha)
    first = np.where(failing.any(axis=1), failing.argmax(axis=1), -1)
    return first, passing & (first < 0)


def _check_against_operator(
    rng: np.random.Generator,
    metric: Metric,
    bound: Bound,
    c: Floats,
    s: Floats,
    trials: Floats,
    fail: Bools,
    ok: Bools,
    alpha: float,
    samples: int = 150,
) -> None:
    runs, checks = c.shape
    picks = list(zip(rng.integers(0, runs, samples), rng.integers(0, checks, samples), strict=True))
    decided = np.argwhere(fail | ok)  # make sure verdicts, not only waiting, are compared
    if len(decided):
        picks += [tuple(decided[i]) for i in rng.integers(0, len(decided), samples)]
    for run, check in picks:
        vectorised = "fail" if fail[run, check] else "pass" if ok[run, check] else "inconclusive"
        n = float(trials[run, check])
        real = _operators_verdict(metric, bound, float(c[run, check]), n, float(s[run, check]), n, alpha)
        if real != vectorised:
            raise AssertionError(
                f"vectorised judge disagrees with modelrelease.analysis.sequential on {metric.name} {bound}: "
                f"candidate {c[run, check]}/{n}, stable {s[run, check]}/{n}: {vectorised} vs {real}"
            )


# -- today's judge, the operator's own function -------------------------------------------------

_RANK = {"fail": 0, "inconclusive": 1, "pass": 2}
_today_cache: dict[tuple[str, int, int, int], int] = {}


def _proportion(events: int, n: int) -> Measurement:
    return Measurement(value=events / n, samples=n, numerator=float(events), denominator=float(n), proportion=True)


def _today_one(metric: Metric, n: int, c_bad: int, s_bad: int) -> int:
    key = (metric.name, n, c_bad, s_bad)
    cached = _today_cache.get(key)
    if cached is not None:
        return cached
    if metric.name == "accuracy":
        result = todays_judge(metric.spec, _proportion(n - c_bad, n), _proportion(n - s_bad, n))
    elif metric.name == "error-rate":
        result = todays_judge(metric.spec, _proportion(c_bad, n), _proportion(s_bad, n))
    else:  # histogram_quantile's p99 is above 250 ms exactly when more than 1% were slower
        p99_seconds = 0.25 * (1 + (c_bad / n - 0.01))
        result = todays_judge(metric.spec, Measurement(value=p99_seconds, samples=n), None)
    _today_cache[key] = verdict = _RANK[result.verdict]
    return verdict


def today(streams: Streams) -> tuple[Ints, Bools]:
    runs, checks = next(iter(streams.candidate.values())).shape
    check = np.full((runs, checks), 2, dtype=np.int64)
    for metric in METRICS:
        c, s = streams.candidate[metric.name], streams.stable[metric.name]
        if metric.name == "latency":
            s = np.zeros_like(s)  # no comparison with the stable version: one key per candidate count
        pairs, inverse = np.unique(np.stack([c.ravel(), s.ravel()], axis=1), axis=0, return_inverse=True)
        verdicts = np.array([_today_one(metric, streams.per_interval, int(a), int(b)) for a, b in pairs])
        check = np.minimum(check, verdicts[inverse.ravel()].reshape(runs, checks))
    failures = (check == 0).cumsum(axis=1)
    rolled = failures >= FAILURE_LIMIT_TODAY
    first = np.where(rolled.any(axis=1), rolled.argmax(axis=1), -1)
    promoted = (first < 0) & ((check == 2).sum(axis=1) >= MIN_CHECKS_TODAY)
    return first, promoted


# -- fixed thresholds ------------------------------------------------------------------------------


def _windows(bad: Ints, per_interval: int, intervals: int) -> tuple[Ints, int]:
    runs, checks = bad.shape
    return bad.reshape(runs, checks // intervals, intervals).sum(axis=2), per_interval * intervals


def _nth_failure(failed: Bools, nth: int) -> Ints:
    reached = failed.cumsum(axis=1) >= nth
    return np.where(reached.any(axis=1), reached.argmax(axis=1), -1)


def fixed_threshold(streams: Streams, window_intervals: int, failures_to_rollback: int) -> tuple[Ints, Bools]:
    """First rollback window per run (-1: none), for point values against the fixed thresholds."""
    failed: Bools | None = None
    for metric in METRICS:
        bad, n = _windows(streams.candidate[metric.name], streams.per_interval, window_intervals)
        over = bad > metric.fixed_threshold * n
        failed = over if failed is None else failed | over
    assert failed is not None
    first = _nth_failure(failed, failures_to_rollback)
    return first, first < 0


# -- summaries -------------------------------------------------------------------------------------


def wilson(successes: int, trials: int, z: float = 1.959963984540054) -> tuple[float, float]:
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    low, high = centre - half, centre + half
    return (0.0 if successes == 0 else max(0.0, low)), (1.0 if successes == trials else min(1.0, high))


@dataclass(frozen=True)
class Outcome:
    runs: int
    rolled_back: int
    promoted: int
    requests: Floats  # the candidate's requests until rollback; the whole stage when not rolled back
    seconds: Floats
    stage_requests: float

    @property
    def share(self) -> float:
        return self.rolled_back / self.runs

    def quantile(self, values: Floats, q: float) -> float | None:
        """A quantile of a censored measure; None when it falls after the stage ended."""
        if self.rolled_back < q * self.runs:
            return None
        return float(np.quantile(values, q, method="inverted_cdf"))


def outcome(first: Ints, promoted: Bools, check_seconds: int, rate: int, stage_seconds: int) -> Outcome:
    rolled = first >= 0
    seconds = np.where(rolled, (first + 1) * check_seconds, stage_seconds).astype(np.float64)
    return Outcome(
        len(first), int(rolled.sum()), int(promoted.sum()), seconds * rate, seconds, float(stage_seconds * rate)
    )


# -- formatting ------------------------------------------------------------------------------------


def pct(share: float) -> str:
    if share <= 0 or share >= 1:
        return f"{100 * share:.0f}%"
    return f"{100 * share:.2g}%" if share < 0.1 else f"{100 * share:.0f}%"


def rolled_cell(o: Outcome) -> str:
    low, high = wilson(o.rolled_back, o.runs)
    return f"{pct(o.share)} ({pct(low)}-{pct(high)})"


def count(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def minutes(value: float | None) -> str:
    return "-" if value is None else f"{value / 60:.1f} min"


def bad_cell(o: Outcome) -> str:
    return (
        f"{pct(o.share)} · {count(o.quantile(o.requests, 0.5))} / {count(o.quantile(o.requests, 0.9))}"
        f" · {minutes(o.quantile(o.seconds, 0.5))} · {pct(o.promoted / o.runs)}"
    )


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


# -- the runs ----------------------------------------------------------------------------------


def cells() -> Iterator[tuple[Scenario, int, str, int]]:
    for scenario in SCENARIOS:
        for rate in RATES:
            for stage, seconds in STAGES.items():
                yield scenario, rate, stage, seconds


def judge_all(streams: Streams, rate: int, seconds: int, alpha: float, rng: np.random.Generator) -> dict[str, Outcome]:
    results = {
        "ours": (ours(streams, alpha, rng), CHECK_SECONDS),
        "today": (today(streams), CHECK_SECONDS),
        "Flagger-like": (
            fixed_threshold(streams, FLAGGER_SECONDS // CHECK_SECONDS, FLAGGER_FAILED_CHECKS),
            FLAGGER_SECONDS,
        ),
        "Argo-like": (fixed_threshold(streams, 1, ARGO_FAILURE_LIMIT + 1), CHECK_SECONDS),
    }
    return {name: outcome(*verdicts, every, rate, seconds) for name, (verdicts, every) in results.items()}


@dataclass(frozen=True)
class Tuned:
    threshold: float  # the accuracy a one-minute window needs
    false: float  # its rollbacks of the candidates it was tuned on
    bad: Outcome  # against a 5-point drop


@dataclass(frozen=True)
class Pair:
    """Ours with one ``maxDrop`` and the fixed judge tuned to the same false rollbacks at that drop."""

    max_drop: float
    ours_false: float  # ours' rollbacks of a candidate exactly ``max_drop`` below stable
    ours: Outcome  # against a 5-point drop
    fixed: Tuned
    before_false: float  # the same with the previous fail-side mixture (the half-normal) ...
    before: Outcome
    before_fixed: Tuned  # ... and the fixed judge tuned to its false rollbacks

    def ratio(self, previous: bool = False) -> float | None:
        """Ours' median exposure to the 5-point drop over the tuned fixed judge's (None: a median after the stage)."""
        mine, fixed = (self.before, self.before_fixed.bad) if previous else (self.ours, self.fixed.bad)
        mine_median, fixed_median = mine.quantile(mine.requests, 0.5), fixed.quantile(fixed.requests, 0.5)
        return None if mine_median is None or fixed_median is None else mine_median / fixed_median


@dataclass(frozen=True)
class Exposure:
    rate: int
    stage: str
    pairs: tuple[Pair, ...]


def _tuned(
    rng: np.random.Generator,
    good: Ints,
    target: float,
    bad: Ints,
    per_window: int,
    rate: int,
    seconds: int,
) -> Tuned:
    """The fixed judge whose window threshold rolls the ``good`` candidates back ``target`` of the time.

    Counts are whole numbers, so no plain threshold hits a small target
    exactly; as in a randomised test, a window exactly at the threshold fails
    with a probability chosen to hit it (the same uniforms decide every
    setting, so the rate is monotone in it).  A run is rolled back when its
    fifth-worst window fails.
    """
    u_good, u_bad = rng.random(good.shape), rng.random(bad.shape)

    def failed(windows: Ints, u: Floats, limit: int, chance: float) -> Bools:
        return (windows > limit) | ((windows == limit) & (u < chance))

    def rolled(limit: int, chance: float) -> float:
        return float((_nth_failure(failed(good, u_good, limit, chance), FLAGGER_FAILED_CHECKS) >= 0).mean())

    fifth_worst = np.sort(good, axis=1)[:, -FLAGGER_FAILED_CHECKS]
    limit = int(fifth_worst.max())
    while limit > 0 and (fifth_worst > limit - 1).mean() <= target:
        limit -= 1  # now: rolled(limit, 0) <= target < rolled(limit, 1), or the strictest limit
    low, high = 0.0, 1.0
    for _ in range(30):
        middle = (low + high) / 2
        low, high = (middle, high) if rolled(limit, middle) <= target else (low, middle)
    first = _nth_failure(failed(bad, u_bad, limit, low), FLAGGER_FAILED_CHECKS)
    return Tuned(
        1 - (limit + 1 - low) / per_window,
        rolled(limit, low),
        outcome(first, first < 0, FLAGGER_SECONDS, rate, seconds),
    )


def accuracy_only(rng: np.random.Generator, rate: int, stage: str, seconds: int, runs: int) -> Exposure:
    """Ours against the fixed-threshold judge on accuracy alone, at the same false rollbacks of allowed candidates.

    Two pairs: no drop allowed (ours with ``maxDrop: 0``, the fixed threshold
    tuned on candidates equal to stable) and one point allowed (``maxDrop:
    0.01``, tuned on candidates exactly one point worse).
    """
    alpha = split_alpha(CONFIDENCE, 1)
    stable = METRICS[0].stable
    checks = seconds // CHECK_SECONDS
    n = rate * CHECK_SECONDS
    per_window = n * FLAGGER_SECONDS // CHECK_SECONDS

    def streams(candidate: float, count: int) -> tuple[Ints, Ints]:
        return (
            rng.binomial(n, candidate, size=(count, checks)).astype(np.int64),
            rng.binomial(n, stable, size=(count, checks)).astype(np.int64),
        )

    def ours_first(c: Ints, s: Ints, max_drop: float, mixture: Mixture) -> Ints:
        trials = (n * np.arange(1, checks + 1, dtype=np.float64))[None, :].repeat(len(c), axis=0)
        bound = Bound("maxDrop", max_drop)
        c_bad, s_bad = c.cumsum(1).astype(float), s.cumsum(1).astype(float)
        fail, _ = ours_bound(bound, c_bad, trials, s_bad, trials, alpha, mixture)
        return np.where(fail.any(axis=1), fail.argmax(axis=1), -1)

    def windows(c: Ints) -> Ints:
        return _windows(c, n, FLAGGER_SECONDS // CHECK_SECONDS)[0]

    bad_c, bad_s = streams(stable + 0.05, runs)
    pairs = []
    for max_drop in (0.0, 0.01):
        good_c, good_s = streams(stable + max_drop, 4 * runs)
        measured = []
        for mixture in (OURS, HALF_NORMAL):
            false = float((ours_first(good_c, good_s, max_drop, mixture) >= 0).mean())
            first = ours_first(bad_c, bad_s, max_drop, mixture)
            tuned = _tuned(rng, windows(good_c), max(false, TUNING_FLOOR), windows(bad_c), per_window, rate, seconds)
            measured.append((false, outcome(first, first < 0, CHECK_SECONDS, rate, seconds), tuned))
        (ours_false, mine, fixed), (before_false, before, before_fixed) = measured
        pairs.append(Pair(max_drop, ours_false, mine, fixed, before_false, before, before_fixed))
    return Exposure(rate, stage, tuple(pairs))


def _accuracy_first_fail(
    rng: np.random.Generator, candidate: float, max_drop: float, rate: int, every: int, seconds: int, runs: int
) -> Ints:
    """First failing check of ours on accuracy alone (alpha 0.01), checked every ``every`` seconds."""
    n, checks = rate * every, seconds // every
    trials = (n * np.arange(1, checks + 1, dtype=np.float64))[None, :].repeat(runs, axis=0)
    c = rng.binomial(n, candidate, size=(runs, checks)).cumsum(1).astype(np.float64)
    s = rng.binomial(n, METRICS[0].stable, size=(runs, checks)).cumsum(1).astype(np.float64)
    fail, _ = ours_bound(Bound("maxDrop", max_drop), c, trials, s, trials, split_alpha(CONFIDENCE, 1))
    return np.where(fail.any(axis=1), fail.argmax(axis=1), -1)


def check_interval_effect(rng: np.random.Generator, runs: int) -> list[list[str]]:
    """Ours on accuracy alone (alpha 0.01, 1 h) checked every 30 s and every 10 s: the guarantee allows any."""
    rows = []
    stable = METRICS[0].stable
    seconds = STAGES["1 h"]
    for max_drop in (0.0, 0.01):
        for rate in (1, 10):
            row = [f"{max_drop:g}", f"{rate}/s"]
            for every in (CHECK_SECONDS, 10):
                good = _accuracy_first_fail(rng, stable + max_drop, max_drop, rate, every, seconds, 2 * runs)
                first = _accuracy_first_fail(rng, stable + 0.05, max_drop, rate, every, seconds, runs)
                o = outcome(first, first < 0, every, rate, seconds)
                row.append(
                    f"{pct(float((good >= 0).mean()))} · "
                    f"{count(o.quantile(o.requests, 0.5))} / {count(o.quantile(o.requests, 0.9))}"
                )
            rows.append(row)
    return rows


def mixture_sensitivity(rng: np.random.Generator, runs: int) -> list[list[str]]:
    """Ours with other fail-side mixing distributions, on the three-metric stage of 1 h at each rate."""
    seconds = STAGES["1 h"]
    alpha = split_alpha(CONFIDENCE, BOUNDS)
    rows = []
    for rate in RATES:
        streams = {s.name: simulate(rng, s, rate, seconds, runs) for s in SCENARIOS if s.name in _MIX_SCENARIOS}
        for mixture in _MIXTURES:
            label = f"{mixture[1]:g} ± {mixture[0]:g}"
            if mixture[2] > 0:
                label += f" + {mixture[2]:g} wide"
            if mixture == OURS:
                label += " (default)"
            elif mixture == CENTRED:
                label += " (previous)"
            elif mixture == HALF_NORMAL:
                label += " (half-normal, before that)"
            row = [f"{rate}/s", label]
            for name in _MIX_SCENARIOS:
                first, promoted = ours(streams[name], alpha, fail_mixture=mixture)
                o = outcome(first, promoted, CHECK_SECONDS, rate, seconds)
                row.append(
                    f"{pct(o.share)} · {pct(o.promoted / o.runs)}"
                    if name in _MIX_GOOD
                    else f"{count(o.quantile(o.requests, 0.5))} / {count(o.quantile(o.requests, 0.9))}"
                )
            rows.append(row)
    return rows


_MIXTURES: tuple[Mixture, ...] = (HALF_NORMAL, (0.05, 0.06, 0.0), CENTRED, OURS, (0.04, 0.1, 0.0), (0.03, 0.11, 0.0))
_MIX_GOOD = ("same as stable", "accuracy -1 pt (= maxDrop)")
_MIX_SCENARIOS = (*_MIX_GOOD, "accuracy -2 pts", "accuracy -5 pts", "errors x2", "slow share x2")


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{model}, {os.cpu_count()} cores (shared; load average {load:.1f} at the end), "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}, numpy {np.__version__}"
    )


def report(runs: int, seed: int, progress: Callable[[str], None]) -> str:
    started = time.monotonic()
    rng = np.random.default_rng(seed)
    alpha = split_alpha(CONFIDENCE, BOUNDS)
    operators = alpha_for([m.spec for m in METRICS], CONFIDENCE)
    if not math.isclose(alpha, operators):
        raise AssertionError(f"the operator splits alpha into {operators}, the bench into {alpha}")
    results: dict[tuple[str, int, str], dict[str, Outcome]] = {}
    for scenario, rate, stage, seconds in cells():
        streams = simulate(rng, scenario, rate, seconds, runs)
        results[(scenario.name, rate, stage)] = judge_all(streams, rate, seconds, alpha, rng)
        progress(
            f"{scenario.name}, {rate}/s, {stage}: "
            + ", ".join(f"{j} {pct(o.share)}" for j, o in results[(scenario.name, rate, stage)].items())
        )
    exposures = [accuracy_only(rng, rate, stage, seconds, runs) for rate in RATES for stage, seconds in STAGES.items()]
    progress("exposure at matched false rollbacks done")
    floors, floor_values = ratio_floors(rng, runs)
    sensitivity = mixture_sensitivity(rng, runs)
    intervals = check_interval_effect(rng, runs)
    elapsed = time.monotonic() - started

    good_rows = []
    for scenario in SCENARIOS:
        if scenario.truth == "bad":
            continue
        for rate in RATES:
            for stage in STAGES:
                r = results[(scenario.name, rate, stage)]
                good_rows.append(
                    [scenario.name, f"{rate}/s", stage]
                    + [rolled_cell(r[j]) for j in JUDGES]
                    + [pct(r["ours"].promoted / r["ours"].runs), pct(r["today"].promoted / r["today"].runs)]
                )
    bad_rows = []
    for scenario in SCENARIOS:
        if scenario.truth != "bad":
            continue
        for rate in RATES:
            for stage in STAGES:
                r = results[(scenario.name, rate, stage)]
                bad_rows.append([scenario.name, f"{rate}/s", stage] + [bad_cell(r[j]) for j in JUDGES])
    exposure_rows = []
    for e in exposures:
        for pair in e.pairs:
            ours_median = pair.ours.quantile(pair.ours.requests, 0.5)
            o = pair.fixed.bad
            fixed_median = o.quantile(o.requests, 0.5)
            if ours_median is not None and fixed_median is not None:
                ratio = f"{ours_median / fixed_median:.2f}"
            elif ours_median is not None:
                ratio = f"< {ours_median / o.stage_requests:.2f}"
            else:
                ratio = "-"
            exposure_rows.append(
                [
                    f"{e.rate}/s",
                    e.stage,
                    f"{pair.max_drop:g}",
                    pct(pair.ours_false),
                    f"{pct(pair.ours.share)} · {count(ours_median)} / {count(pair.ours.quantile(pair.ours.requests, 0.9))}",
                    f">= {pair.fixed.threshold:.3f}, {pct(pair.fixed.false)}",
                    f"{pct(o.share)} · {count(fixed_median)} / {count(o.quantile(o.requests, 0.9))}",
                    ratio,
                    _before_cell(pair),
                ]
            )

    worst_false = max(
        (r["ours"].share, name, rate, stage)
        for (name, rate, stage), r in results.items()
        if next(sc for sc in SCENARIOS if sc.name == name).truth != "bad"
    )
    ratios: dict[int, list[float]] = {rate: [] for rate in RATES}
    for e in exposures:
        for pair in e.pairs:
            ours_median = pair.ours.quantile(pair.ours.requests, 0.5)
            fixed_median = pair.fixed.bad.quantile(pair.fixed.bad.requests, 0.5)
            if ours_median is not None and fixed_median is not None:
                ratios[e.rate].append(ours_median / fixed_median)
    ratio_text = "; ".join(
        f"{rate}/s: {min(found):.2f}-{max(found):.2f}" if found else f"{rate}/s: not measurable (ours rarely decides)"
        for rate, found in ratios.items()
    )
    targets = _targets(results, exposures, worst_false)
    progress("targets:\n" + "\n".join(" | ".join(row) for row in targets))
    text = [
        "## Judgment",
        "",
        f"Summary (computed by the run): ours' highest false-rollback share over every good cell, drift and "
        f"candidates exactly at `maxDrop` included, is {pct(worst_false[0])} ({worst_false[1]}, {worst_false[2]}/s, "
        f"{worst_false[3]}; target at most 1%). Requests a 5-point accuracy drop serves under ours, over the "
        f"fixed-threshold judge's at the same false-rollback rate (target at most 0.33): {ratio_text}.",
        "",
        "### The issue's targets, checked",
        "",
        table(["target", "measured", "met"], targets),
        "",
        _TARGETS_NOTE.format(floors=_floor_summary(floor_values), verdict=_slow_verdict(floor_values)),
        "",
        "`make bench-judgment` (`python -m devstack.bench_judgment`, module docstring for the model): "
        f"{runs:,} simulated stages per cell (the exposure tuning uses {4 * runs:,} good ones), seed {seed}, "
        f"{elapsed / 60:.1f} min on {machine()}.",
        "",
        f"A stage judges accuracy (stable 95%, `maxDrop: 0.01`), error rate (stable 1%, `max: 0.05`, "
        f"`maxIncrease: 0.005`) and latency (0.7% slower than 250 ms, `p99 <= 250ms`); ours spends "
        f"alpha = {alpha:g} on each of the {BOUNDS} bounds (confidence {CONFIDENCE}). Requests/s are per version. "
        "Intervals in brackets are 95% Wilson intervals.",
        "",
        "### Good candidates: false rollbacks",
        "",
        "Share of stages rolled back (95% interval); the last two columns: share promoted at the end of the stage "
        "(ours: every bound shown within its limit; today: 3 passing checks and no rollback). "
        "Accuracy -1 pt is exactly at `maxDrop: 0.01`, so the spec allows it.",
        "",
        table(["candidate", "rate", "stage", *JUDGES, "ours promoted", "today promoted"], good_rows),
        "",
        "### Bad candidates",
        "",
        "Per judge: share rolled back · requests the candidate served before rollback, median / p90 "
        "(- : the stage ended first) · median time to rollback · share promoted.",
        "",
        table(["candidate", "rate", "stage", *JUDGES], bad_rows),
        "",
        "### Exposure to a 5-point accuracy drop at the same false-rollback rate",
        "",
        "Accuracy alone (alpha 0.01 for ours). The fixed-threshold judge is the Flagger-like one (1 min windows, "
        "rollback at 5 failed windows) with its accuracy threshold tuned on good streams to roll back as often as "
        "ours does (randomised at the threshold to hit that rate exactly, and at least "
        f"{pct(TUNING_FLOOR)} for a stable estimate). Two pairs: no drop allowed (ours with `maxDrop: 0`, both "
        "tuned on candidates equal to stable) and a 1-point drop allowed (ours with `maxDrop: 0.01`, both measured "
        "on candidates exactly 1 point worse, which the spec allows). Against the 5-point drop: rolled back · "
        "requests served median / p90. Ratio: ours' median over the fixed judge's (target: at most 0.33).",
        "",
        table(
            [
                "rate",
                "stage",
                "maxDrop",
                "ours false rollbacks",
                "ours vs -5 pts",
                "fixed threshold, its false rollbacks",
                "fixed vs -5 pts",
                "ratio",
                "previous mixture: false rollbacks · median vs -5 pts · ratio",
            ],
            exposure_rows,
        ),
        "",
        "### What any judge could reach: the floor of the ratio",
        "",
        _FLOOR_NOTE + " " + _floor_summary(floor_values),
        "",
        table(
            [
                "rate",
                "stage",
                "maxDrop",
                "false rollbacks allowed",
                "fixed threshold tuned to them · its median vs -5 pts",
                "best fixed-sample test: requests for 50% power",
                "floor of the ratio",
            ],
            floors,
        ),
        "",
        "### Checking more often",
        "",
        "The guarantee holds whatever the number of looks, so checks can be as frequent as the scrape interval "
        "allows. Accuracy alone (alpha 0.01), 1 h stage: false rollbacks at `maxDrop` · requests a 5-point drop "
        "served before rollback, median / p90.",
        "",
        table(["maxDrop", "rate", "every 30 s", "every 10 s"], intervals),
        "",
        "### The fail side's mixing distribution (the three-metric stage, 1 h)",
        "",
        "The mSPRT that fails a candidate averages likelihood ratios over a mixing distribution of the excess "
        "beyond the limit; every choice keeps the guarantee, the choice only moves power between small and large "
        "regressions. Rows: a normal of centre ± scale (per-request standard deviations at the limit) truncated "
        'to regressions, "+ s wide" with a share s of the weight on a half-normal of scale '
        f"{FAIL_WIDE_TAU_SCALE:g} (it fails a plainly broken model within a few dozen requests; "
        "`sequential.FAIL_WIDE_SHARE`); 0 ± 0.1 is the half-normal used first (and still on the pass side). "
        "Good candidates "
        "(same as stable; exactly at `maxDrop`): rolled back · promoted. Bad candidates: requests served before "
        "rollback, median / p90.",
        "",
        table(["rate", "fail-side mixture", *_MIX_SCENARIOS], sensitivity),
        "",
    ]
    return "\n".join(text)


def _before_cell(pair: Pair) -> str:
    """The previous fail-side mixture (half-normal, ``TAU_SCALE``) in the same pair, against its own tuned fixed judge."""
    o = pair.before
    ratio = pair.ratio(previous=True)
    return (
        f"{pct(pair.before_false)} · {count(o.quantile(o.requests, 0.5))} · {'-' if ratio is None else f'{ratio:.2f}'}"
    )


FLOOR_RATES = (1, 10)
FLOOR_FALSE = (0.0025, 0.005, 0.01)


def ratio_floors(rng: np.random.Generator, runs: int) -> tuple[list[list[str]], dict[int, list[tuple[float, float]]]]:
    """For false-rollback rates up to 1%: the tuned fixed judge's median exposure and the least any judge could have.

    Any judge, sequential or not, that rolls back an allowed candidate at
    most ``f`` of the time over a stage does so at most ``f`` of the time by
    its ``n``-th request, so "rolled back by request ``n``" is a fixed-sample
    test at level ``f``; if the judge's median exposure to the drop is ``n``,
    that test has power 1/2 at ``n``.  No level-``f`` test has power 1/2
    before ``best_possible(f)`` requests (Neyman-Pearson, normal
    approximation), so no judge's ratio can be below ``best_possible(f)``
    over the fixed judge's median at the same ``f``.
    """
    stable = METRICS[0].stable
    rows = []
    found: dict[int, list[tuple[float, float]]] = {rate: [] for rate in FLOOR_RATES}
    for rate in FLOOR_RATES:
        n = rate * CHECK_SECONDS
        per_window = n * FLAGGER_SECONDS // CHECK_SECONDS
        for stage, seconds in STAGES.items():
            checks = seconds // CHECK_SECONDS
            per = FLAGGER_SECONDS // CHECK_SECONDS
            bad = _windows(rng.binomial(n, stable + 0.05, size=(runs, checks)).astype(np.int64), n, per)[0]
            for max_drop in (0.0, 0.01):
                good = _windows(rng.binomial(n, stable + max_drop, size=(4 * runs, checks)).astype(np.int64), n, per)[0]
                for false in FLOOR_FALSE:
                    fixed = _tuned(rng, good, false, bad, per_window, rate, seconds)
                    median = fixed.bad.quantile(fixed.bad.requests, 0.5)
                    least = best_possible(false, max_drop)
                    floor = "-" if median is None else f"{least / median:.2f}"
                    if median is not None:
                        found[rate].append((false, least / median))
                    rows.append(
                        [
                            f"{rate}/s",
                            stage,
                            f"{max_drop:g}",
                            pct(false),
                            f">= {fixed.threshold:.3f} · {count(median)}",
                            count(least),
                            floor,
                        ]
                    )
    return rows, found


_FLOOR_NOTE = (
    "If a judge rolls an allowed candidate back at most a share f of the "
    'time over a whole stage, then "rolled back by the n-th request" is a fixed-sample test at level f, and '
    "if the judge's median exposure to the 5-point drop is n, that test has power 1/2 at n. The most powerful "
    "level-f test of the drop (the one-sided z-test on the two versions' counts, told n in advance) reaches "
    "power 1/2 at n* = z_f^2 (p_c q_c + p_s q_s) / (0.05 - maxDrop)^2 requests per version (normal "
    "approximation; p_s = 0.05, p_c = 0.10). So no judge, sequential or not, has a median exposure below n*, "
    "and no judge's ratio to the fixed-threshold judge tuned to the same f is below n* over that judge's "
    "median. The table computes both for false-rollback rates up to the 1% target (a dash: the fixed judge's "
    "median falls after the stage). The Flagger-like judge cannot roll back before its fifth one-minute window "
    "(300 requests at 1/s, 3,000 at 10/s), so where n* is a large share of that, no judge can be three times "
    "faster."
)


def best_possible(false_rollbacks: float, allowed: float, drop: float = 0.05) -> float:
    """Requests per version the best fixed-sample test at this false-rollback rate needs to see ``drop`` half the time.

    The one-sided z-test of "the drop is at most ``allowed``" on two
    proportions (stable 5% wrong answers, the candidate ``drop`` more) at
    level ``false_rollbacks`` has 50% power at
    ``n = z^2 (p_c q_c + p_s q_s) / (drop - allowed)^2``: no test that rolls an
    allowed model back that rarely, even one told its sample size in advance,
    has a median exposure much below it.  Over the fixed judge's median it is
    the floor of the ratio any judge can reach (a sequential test pays a
    little more for being valid at every look).
    """
    from scipy.stats import norm

    stable = METRICS[0].stable
    candidate = stable + drop
    z = float(norm.isf(max(false_rollbacks, 1e-6)))
    return z * z * (candidate * (1 - candidate) + stable * (1 - stable)) / ((drop - allowed) ** 2)


def _floor_summary(floors: dict[int, list[tuple[float, float]]]) -> str:
    """The lowest floor of the ratio at each rate, for false-rollback rates up to 0.5% (as rare as ours) and at 1%."""
    parts = []
    for rate, found in floors.items():
        rare = [floor for false, floor in found if false <= 0.005]
        full = [floor for false, floor in found if false > 0.005]
        rare_text = f"{min(rare):.2f}" if rare else "-"
        full_text = f"{min(full):.2f}" if full else "-"
        parts.append(f"{rate}/s: {rare_text} at false-rollback rates up to 0.5%, {full_text} at 1%")
    return "Lowest floor of the ratio any judge could reach: " + "; ".join(parts) + "."


def _slow_verdict(floors: dict[int, list[tuple[float, float]]]) -> str:
    """What the floors say about 1 request/s, worded from the numbers this run computed."""
    slow = floors.get(1, [])
    if slow and min(floor for _, floor in slow) > 1 / 3:
        return (
            "So at 1/s no judge whose false rollbacks stay within the 1% target meets 1/3, whatever its mixing "
            "distribution, check interval or minimum-events rule."
        )
    rare = [floor for false, floor in slow if false <= 0.005]
    if rare and min(rare) > 1 / 3:
        return (
            "So at 1/s no judge that rolls back an allowed candidate at most 0.5% of the time meets 1/3; only one "
            "spending nearly the whole 1% (and told its sample size in advance) could come near it."
        )
    return "At 1/s the floor does not rule 1/3 out in every row."


_TARGETS_NOTE = (
    "Where the exposure target is missed, the last column says why: the best fixed-sample test (one told the "
    "sample size in advance, which no judge of a live stage is) already needs that share of the fixed "
    'judge\'s exposure at the same false-rollback rate, and "What any judge could reach" below shows the '
    "same for every false-rollback rate up to 1%. At 1 request/s the Flagger-like judge rolls a 5-point "
    "drop back after a few hundred requests (five one-minute windows, 300 requests, at the earliest), while "
    "any test that rolls back an "
    "allowed candidate as rarely needs several hundred requests to see the drop half the time. {floors} "
    "{verdict} "
    "The rest of ours' gap to the floor is the price of a guarantee valid at every look and the 30 s check "
    "grain (at 10/s a check adds 300 requests, a tenth of the fixed judge's exposure); the fail side's "
    "mixture, centred on regressions of a few points (mixing-distribution table), is what brings the 10/s "
    "ratio with `maxDrop: 0.01` from 4 checks to 3 (previous-mixture column)."
)


def _span(values: list[float]) -> str:
    low, high = f"{min(values):.2f}", f"{max(values):.2f}"
    return low if low == high else f"{low}-{high}"


def _targets(
    results: dict[tuple[str, int, str], dict[str, Outcome]],
    exposures: list[Exposure],
    worst_false: tuple[float, str, int, str],
) -> list[list[str]]:
    """The issue's targets with the numbers this run measured, and whether each was met."""
    rows = [
        [
            "false rollbacks of good candidates at most 1% at every horizon and under drift (ours)",
            f"worst {pct(worst_false[0])} ({worst_false[1]}, {worst_false[2]}/s, {worst_false[3]})",
            "yes" if worst_false[0] <= 0.01 else "NO",
        ]
    ]
    for max_drop in (0.0, 0.01):
        for rate in RATES:
            found = []
            floors = []
            for e in exposures:
                for pair in e.pairs:
                    if e.rate != rate or pair.max_drop != max_drop:
                        continue
                    ours_median = pair.ours.quantile(pair.ours.requests, 0.5)
                    fixed_median = pair.fixed.bad.quantile(pair.fixed.bad.requests, 0.5)
                    if ours_median is not None and fixed_median is not None:
                        found.append(ours_median / fixed_median)
                        floor = best_possible(max(pair.fixed.false, TUNING_FLOOR), max_drop) / fixed_median
                        floors.append(floor)
            target = (
                f"exposure to a 5-point drop at most 1/3 of the tuned fixed threshold, {rate}/s, maxDrop {max_drop:g}"
            )
            if not found:
                rows.append([target, "not measurable (a judge rarely decides within the stage)", "-"])
                continue
            met = "yes" if max(found) <= 1 / 3 else "NO"
            note = (
                f"{_span(found)} (best fixed-sample test at the same false-rollback rate, 50% power: {_span(floors)})"
            )
            rows.append([target, note, met])
    rows.append(
        [
            f"no verdict on fewer than the minimum events ({MIN_EVENTS} of the rarer outcome expected at the bound; "
            f"a fail also once {MIN_EVENTS} bad outcomes are shown)",
            "enforced in sequential.against_*; property-tested (tests/unit/test_sequential_verdicts.py)",
            "yes",
        ]
    )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.bench_judgment", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--runs", type=int, default=2000, help="simulated stages per cell (default 2000, at least 2000 for the docs)"
    )
    parser.add_argument("--seed", type=int, default=20250101)
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error(f"--runs must be at least 1, not {args.runs}")
    markdown = report(args.runs, args.seed, lambda line: print(f"bench-judgment: {line}", file=sys.stderr, flush=True))
    print(markdown)
    if not args.no_write:
        if args.runs < 2000:
            print("bench-judgment: fewer than 2,000 runs per cell: docs/benchmarks.md not written", file=sys.stderr)
        else:
            write_section(markdown)
            print(f"bench-judgment: wrote the Judgment section of {DOCS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
