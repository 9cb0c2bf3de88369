"""Always-valid sequential tests for proportions, judged on counts pooled over a stage.

Why: a test that looks at one interval at a time, with failures adding up
over a stage, rolls a good model back more often the longer the stage runs
(at 60 checks, two thirds of the time for a model exactly at its bound), and
passing on the point estimate promotes models that are clearly worse.  The
tests here keep their error rate whatever the number of looks: a good model
is failed with probability at most ``alpha`` over the whole stage, however
often it is checked and however long the stage lasts, and a model worse than
allowed passes with probability at most ``alpha``.

Method.  Every question is asked about a *bad-outcome rate* ``r`` (errors,
slow requests, wrong answers: ``1 - accuracy``), so "worse" is always
"higher".  The quantity judged is ``d = r_candidate - r_stable`` against a
margin (``maxDrop``/``maxIncrease``) or ``d = r_candidate`` against a fixed
bound (``min``/``max``); ``v`` is the variance of its estimate and ``theta``
the margin or bound.

- **fail** is the mixture sequential probability ratio test (mSPRT) of
  Johari, Pekelis and Walsh, "Always Valid Inference: Continuous Monitoring
  of A/B Tests", Operations Research 70(3), 2022 (arXiv:1512.04922): the
  likelihood ratio of "the excess over the limit is ``delta``" against "it
  is zero", averaged over a mixing distribution of ``delta`` on the side
  tested (the question is one-sided: only "worse than allowed" fails).
  Johari et al. define the test for any mixing distribution; which one
  only decides which effects are seen soonest.  Ours is a weighted sum of
  two parts, each a normal of centre ``mu`` and scale ``tau`` truncated to
  ``delta >= 0``, whose ratio has a closed form (``log_evidence``; the
  sum's ratio is the weighted sum of the parts', ``mixture_log_evidence``)::

      P = 1/v + 1/tau^2,   y = (excess/v + mu/tau^2) / sqrt(P)
      Lambda = Phi(y) exp((y^2 - mu^2/tau^2) / 2) / (Phi(mu/tau) sqrt(1 + tau^2/v))

  With ``mu = 0`` this is the half-normal mixture ``2 Phi(x) sqrt(v / (v +
  tau^2)) exp(x^2 / 2)``.  The fail side's main part is centred on the
  regressions a release must catch quickly (``FAIL_CENTRE_SCALE``,
  ``FAIL_TAU_SCALE``): a few points of accuracy beyond the margin; a small
  share (``FAIL_WIDE_SHARE``) is a wide half-normal (``FAIL_WIDE_TAU_SCALE``)
  that fails a plainly broken model within a few dozen requests, twice as
  soon as the centred part alone, which puts little weight on effects ten
  times its centre.  The candidate fails when
  ``d > theta`` and ``Lambda >= 1/alpha``.  Each alternative in the mixture
  gives a nonnegative martingale while ``d = theta`` and a supermartingale
  while ``d < theta``, so by Ville's inequality the chance that ``Lambda``
  *ever* reaches ``1/alpha`` for a candidate within its limit is at most
  ``alpha``, whatever the mixing distribution: one fail is evidence,
  whatever the number of looks.
- **pass** is the same test the other way round ("worse than allowed" is the
  null, mixing over ``d < theta`` with the half-normal of scale ``tau``:
  a candidate as good as stable is only the margin inside it), i.e. the
  non-inferiority bound of the
  one-sided normal-mixture confidence sequence of Howard, Ramdas, McAuliffe
  and Sekhon, "Time-uniform, nonparametric, nonasymptotic confidence
  sequences", Annals of Statistics 49(2), 2021: the upper end
  ``d + w`` holds at every time at once with probability ``1 - alpha``,
  where ``w`` solves ``Lambda(w) = 1/alpha``.  The candidate passes when that
  upper end is below the margin or bound.  ``d - w'`` is the matching lower
  end, with ``w'`` solving the fail side's ``Lambda(w') = 1/alpha``, so the
  interval shown explains the verdict: **fail** iff lower > theta, **pass**
  iff upper < theta, **inconclusive** otherwise (each end is a one-sided
  always-valid bound at level ``alpha``; the two ends need not be the same
  distance from ``d``).
- **variance**: the larger of the plug-in variance (observed rates) and
  the variance the counts would have *at* ``theta`` (for two versions, the
  pooled rate shifted by the margin: ``r_s0 = (bad_c + bad_s - n_c theta) /
  (n_c + n_s)``, ``r_c0 = r_s0 + theta``).  The plug-in is the conservative
  choice in the upper tail, the value at ``theta`` in the lower tail (zero
  errors observed still leaves an honest bound), so the normal approximation
  errs towards *inconclusive* on either side.  The interval is computed with
  that variance, so it is exact at the margin, where the verdict is decided.
- **tau** and **mu** are given in per-request standard deviations at
  ``theta`` (``sqrt(r_c0 (1 - r_c0) + r_s0 (1 - r_s0))`` against the stable
  version), so the mixture is scaled to the metric: a point of accuracy and
  a tenth of a point of errors are alike.  Pass: half-normal,
  ``TAU_SCALE``.  Fail: centre ``FAIL_CENTRE_SCALE``, scale
  ``FAIL_TAU_SCALE``, with ``FAIL_WIDE_SHARE`` of the weight on a
  half-normal of scale ``FAIL_WIDE_TAU_SCALE``.
- **too few events**: the normal approximation needs enough outcomes of
  the rarer kind.  Each version must have served enough requests that
  ``MIN_EVENTS`` of them would be bad (and good) at the margin or bound:
  ``n * min(q, 1 - q) >= MIN_EVENTS`` with ``q`` the bound, or against the
  stable version the rate midway between the two versions' rates at the
  margin (``r_s0 + theta / 2``, the same whichever way the question is
  put).  Below that the verdict is inconclusive, so a handful of requests
  can neither promote nor roll back, with one exception that only fails:
  when the bad outcome is the rarer one at the limit, a candidate that has
  already *shown* ``MIN_EVENTS`` bad outcomes (and, against the stable
  version, a stable version past its own floor) is judged on them.  The
  expected count guards the approximation for a candidate near the limit;
  a candidate that shows ten bad outcomes before it was expected to show
  ten is far from it, and waiting for the expected count let a model that
  failed half its requests answer a hundred users (``make bench-peers``).
  The plug-in variance, larger than the variance at the limit for such a
  candidate, keeps the approximation conservative there, and a pass still
  needs the expected count.  A candidate with no errors at all still passes
  once it has served enough requests.
- **alpha** comes from ``spec.analysis.confidence`` split equally over every
  bound judged in a stage (Bonferroni, ``split_alpha``): the chance that any
  of them fails a good model is at most ``1 - confidence``.

The normal plug-in makes the guarantee asymptotic; the unit tests and
``make bench-judgment`` check it by simulation at the rates we serve.
Counts should be pooled since the stage began (``modelrelease.analysis.pooled``)
with a steady traffic split within the stage, so that both versions see the
same mix of traffic and a drift common to both cancels out.

Pure functions, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from modelrelease.api.status import Verdict

MIN_EVENTS = 10
"""Outcomes of the rarer kind each version must be expected to show at the margin or bound before a verdict.

(Or, to fail only, bad outcomes the candidate has shown: see the module docstring.)

Ten is the textbook condition (n p >= 10 and n (1 - p) >= 10) for the
normal approximation to a binomial count; with fewer the approximation's
tails are too far off for a level as small as a Bonferroni share of 1%.
"""

TAU_SCALE = 0.1
"""Scale of the half-normal mixing distribution of the pass side, in per-request standard deviations at the limit.

The mixture is most powerful for effects of roughly this size at the sample
sizes a stage reaches: a candidate as good as stable is a margin of one
point of accuracy (about 0.03 standard deviations) inside ``maxDrop: 0.01``.
The same scale serves ``modelrelease.analysis.distribution``.
"""

FAIL_CENTRE_SCALE = 0.09
"""Centre of the fail side's mixing distribution, in per-request standard deviations at the limit.

Johari, Pekelis and Walsh define the test for any mixing distribution (a
mixture is Robbins' average of likelihood-ratio martingales, so its level
does not depend on the choice; the choice decides which effects are seen
soonest).
A release is most costly when a clearly worse model keeps serving; 0.09
standard deviations is about 3 points of accuracy beyond the margin at
5-8% wrong answers (a 4-point drop with ``maxDrop: 0.01``).  Measured
(docs/benchmarks.md, "Judgment"): with this centre a 5-point drop at 10 requests/s is
rolled back by the third 30 s check in about 52% of stages, against 47% for
the half-normal of ``TAU_SCALE`` (the median crosses from 1,200 to 900
requests, at alpha 0.01 with ``maxDrop: 0.01``; pinned by
tests/unit/test_sequential_exposure.py).  All of the mixture on that one
drop, Wald's likelihood-ratio test for it, would reach about 60%, but would
never catch a drop of less than half the size; with ``FAIL_TAU_SCALE`` the
small ones cost a tenth to a sixth more requests than under the half-normal
(the benchmark's mixing-distribution table).
"""

FAIL_TAU_SCALE = 0.05
"""Scale of the fail side's mixing distribution (a normal truncated to regressions), per request standard deviation.

Wide enough that regressions of one or two points beyond the margin still
fail: a 2-point drop with ``maxDrop: 0.01`` at 10 requests/s needs about a
tenth more requests than under the half-normal; narrower scales buy little
on large drops and lose more on small ones (the benchmark's
mixing-distribution table).
"""

FAIL_WIDE_SHARE = 0.02
"""Share of the fail side's mixture on a wide half-normal (``FAIL_WIDE_TAU_SCALE``): a broken model fails soon.

The centred part puts almost no weight on effects ten times its centre, so
a plainly broken model gathers evidence little faster than one a few points
worse: ``make bench-peers`` saw v3 (59% correct against stable's 97%, a
38-point drop with ``maxDrop: 0.02``) serve 97 requests at 10% of 10
requests/s before its first fail; on those rates the centred part alone
needs 83.  With a fiftieth of the weight on a half-normal of half a standard
deviation it needs 43 (tests/unit/test_sequential_mixture.py pins both).
Any mixture keeps the level; the price is ln(1/0.98) = 0.02 of
log-evidence on the drops the centred part is for: the share of 5-point
drops failed by the third check at 10 requests/s goes from 0.521 to 0.519
(tests/unit/test_sequential_exposure.py's streams).  A twentieth would
save three more requests on v3 for three times that price.
"""

FAIL_WIDE_TAU_SCALE = 0.5
"""Scale of the fail side's wide part, per-request standard deviations: gross regressions of 0.3 to 2 of them.

v3's 38-point drop is about one standard deviation at the margin; scales
from 0.5 to 1 fail it within 40 to 43 requests, 0.25 needs 56.
"""

Component = tuple[float, float, float]
"""One part of a mixing distribution: (weight, tau, centre); the weights of a side sum to 1."""

Limit = Literal["min", "max", "maxDrop", "maxIncrease"]
"""Which bound of a metric is judged; names as in ``MetricSpec`` / ``CompareToBaseline``."""

_HIGHER_IS_BETTER: dict[Limit, bool] = {"min": True, "maxDrop": True, "max": False, "maxIncrease": False}
_COMPARED: dict[Limit, str] = {"min": "value", "max": "value", "maxDrop": "drop", "maxIncrease": "rise"}


@dataclass(frozen=True)
class Counts:
    """A version's pooled counts: ``numerator`` events of ``denominator`` trials (successes, errors, slow requests)."""

    numerator: float
    denominator: float

    @property
    def value(self) -> float | None:
        return self.numerator / self.denominator if self.denominator > 0 else None


@dataclass(frozen=True)
class SequentialResult:
    """The verdict on one bound of one metric, with everything needed to explain it.

    ``compared`` names the quantity judged, in the metric's own unit:
    ``value`` for ``min``/``max``, ``drop`` (stable minus candidate) for
    ``maxDrop``, ``rise`` (candidate minus stable) for ``maxIncrease``.
    ``estimate`` is its observed value, ``lower``/``upper`` its always-valid
    bounds (each one-sided at ``alpha``); ``evidence`` is the mixture
    likelihood ratio against the limit on the side the estimate lies (fail
    above it, pass below it, once it reaches ``1/alpha``); ``variance`` is
    the test's variance of the estimate and ``scale`` the per-request
    standard deviation at the limit, the unit of both mixing distributions.
    These are None when there were too few requests to compute them.
    ``needed`` is the requests each version needs before a verdict (0 when
    the limit allows every proportion).  The bounds and ``reason`` are
    computed when read, so a verdict alone costs a few microseconds.
    """

    metric: str
    verdict: Verdict
    limit_name: Limit
    limit: float
    candidate: Counts
    stable: Counts | None
    compared: str
    estimate: float | None
    evidence: float | None
    variance: float | None
    scale: float | None
    alpha: float
    needed: float
    note: str = ""

    @property
    def lower(self) -> float | None:
        """The always-valid lower end: the fail side's bound, except for ``min`` (where lower is worse)."""
        width = self._width(fail=self.limit_name != "min")
        return None if width is None or self.estimate is None else self.estimate - width

    @property
    def upper(self) -> float | None:
        """The always-valid upper end: the pass side's bound, except for ``min``."""
        width = self._width(fail=self.limit_name == "min")
        return None if width is None or self.estimate is None else self.estimate + width

    def _width(self, fail: bool) -> float | None:
        if self.variance is None or self.scale is None:
            return None
        return mixture_half_width(self.variance, _mixture(self.scale, fail), self.alpha)

    @property
    def reason(self) -> str:
        """One line for status and events: both versions' counts, the estimate, the bound or evidence, the limit."""
        text = _explain(self)
        return f"{text}; {self.note}" if self.note else text


def split_alpha(confidence: float, tests: int) -> float:
    """Each test's level when ``tests`` bounds share ``1 - confidence`` (Bonferroni).

    The chance that any of them fails a good candidate in the stage is then
    at most ``1 - confidence``.  ``confidence`` is ``spec.analysis.confidence``.
    """
    if not (math.isfinite(confidence) and 0.5 < confidence < 1.0):
        raise ValueError(f"spec.analysis.confidence is {confidence}: must be greater than 0.5 and less than 1")
    if tests < 1:
        raise ValueError(f"tests is {tests}: alpha is split over at least one test")
    return (1.0 - confidence) / tests


def against_stable(
    metric: str,
    candidate: Counts,
    stable: Counts,
    limit_name: Literal["maxDrop", "maxIncrease"],
    margin: float,
    alpha: float,
) -> SequentialResult:
    """Is the candidate worse than the stable version by more than ``margin`` (fail), within it (pass), or unknown?"""
    _check_level(alpha)
    if not (math.isfinite(margin) and margin >= 0):
        raise ValueError(f"compareToBaseline.{limit_name} is {margin}: must be a number >= 0")
    if not (_finite(candidate) and _finite(stable)):
        return _unjudgeable(metric, "inconclusive", limit_name, margin, candidate, stable, alpha, math.inf)
    c_bad, n_c = _bad(candidate, limit_name)
    s_bad, n_s = _bad(stable, limit_name)
    if margin >= 1.0:
        return _unjudgeable(metric, "pass", limit_name, margin, candidate, stable, alpha, 0.0)
    r_s0 = min(max((c_bad + s_bad - n_c * margin) / (n_c + n_s), 0.0), 1.0 - margin) if n_c + n_s > 0 else 0.0
    r_c0 = r_s0 + margin
    needed = _needed(r_s0 + margin / 2)
    fail_only = n_c < needed and _shown_bad(c_bad, r_s0 + margin / 2)
    if n_s < needed or (n_c < needed and not fail_only) or n_c <= 0:
        return _unjudgeable(metric, "inconclusive", limit_name, margin, candidate, stable, alpha, needed)
    r_c, r_s = c_bad / n_c, s_bad / n_s
    plug_in = r_c * (1 - r_c) / n_c + r_s * (1 - r_s) / n_s
    at_margin = r_c0 * (1 - r_c0) / n_c + r_s0 * (1 - r_s0) / n_s
    scale = math.sqrt(r_c0 * (1 - r_c0) + r_s0 * (1 - r_s0))
    return _decide(
        metric,
        limit_name,
        margin,
        candidate,
        stable,
        alpha,
        needed,
        r_c - r_s,
        margin,
        max(plug_in, at_margin),
        scale,
        may_pass=not fail_only,
    )


def against_bound(
    metric: str, candidate: Counts, limit_name: Literal["min", "max"], bound: float, alpha: float
) -> SequentialResult:
    """Is the candidate's proportion beyond ``bound`` (fail), within it (pass), or unknown?"""
    _check_level(alpha)
    if not math.isfinite(bound):
        raise ValueError(f"{limit_name} is {bound}: must be a finite number")
    if not _finite(candidate):
        return _unjudgeable(metric, "inconclusive", limit_name, bound, candidate, None, alpha, math.inf)
    bad, n = _bad(candidate, limit_name)
    bad_bound = 1.0 - bound if _HIGHER_IS_BETTER[limit_name] else bound
    if bad_bound >= 1.0:
        return _unjudgeable(metric, "pass", limit_name, bound, candidate, None, alpha, 0.0)
    needed = _needed(bad_bound)
    fail_only = n < needed and _shown_bad(bad, bad_bound)
    if (n < needed and not fail_only) or n <= 0:
        return _unjudgeable(metric, "inconclusive", limit_name, bound, candidate, None, alpha, needed)
    r = bad / n
    variance = max(r * (1 - r), bad_bound * (1 - bad_bound)) / n
    scale = math.sqrt(bad_bound * (1 - bad_bound))
    return _decide(
        metric, limit_name, bound, candidate, None, alpha, needed, r, bad_bound, variance, scale, may_pass=not fail_only
    )


def log_evidence(excess: float, variance: float, tau: float, centre: float = 0.0) -> float:
    """ln Lambda of the one-sided mixture SPRT for an estimate ``excess`` beyond the null value.

    The mixing distribution is a normal of centre ``centre`` and scale
    ``tau`` truncated to the side tested (``centre = 0``: the half-normal).
    ``excess`` is measured towards the side tested (positive: the estimate
    lies on that side); the evidence grows with it, and its logarithm is
    convex in it.
    """
    if centre == 0.0:
        ratio = tau * tau / (variance + tau * tau)
        x = excess * math.sqrt(ratio / variance)
        return math.log(2.0) + _log_normal_cdf(x) + 0.5 * math.log1p(-ratio) + 0.5 * x * x
    precision = 1.0 / variance + 1.0 / (tau * tau)
    y = (excess / variance + centre / (tau * tau)) / math.sqrt(precision)
    z = centre / tau
    return _log_normal_cdf(y) + 0.5 * (y - z) * (y + z) - 0.5 * math.log1p(tau * tau / variance) - _log_normal_cdf(z)


def half_width(variance: float, tau: float, alpha: float, centre: float = 0.0) -> float:
    """The ``w >= 0`` at which ``log_evidence(w) = ln(1/alpha)``: that end of the always-valid interval is this far out.

    Solved by Newton's method, which converges from above because the log
    evidence is increasing and convex in the excess (a first step from
    below lands above the root).
    """
    if centre == 0.0:
        ratio = tau * tau / (variance + tau * tau)
        target = math.log(1 / alpha) - math.log(2.0) - 0.5 * math.log1p(-ratio)
        x = math.sqrt(2 * (target + math.log(2.0)))  # the two-sided solution: evidence there is already >= target
        for _ in range(50):
            gap = _log_normal_cdf(x) + 0.5 * x * x - target
            slope = _normal_pdf_over_cdf(x) + x
            step = gap / slope
            x -= step
            if abs(step) < 1e-12:
                break
        return x * math.sqrt(variance / ratio)
    target = math.log(1 / alpha)
    root_precision = math.sqrt(1.0 / variance + 1.0 / (tau * tau))
    w = math.sqrt(2 * target * variance) + centre  # above the root whenever the mixture sits below the estimate
    for _ in range(100):
        y = (w / variance + centre / (tau * tau)) / root_precision
        gap = log_evidence(w, variance, tau, centre) - target
        slope = (y + _normal_pdf_over_cdf(y)) / (variance * root_precision)  # d ln Lambda / d excess
        step = gap / slope
        w -= step
        if abs(step) < 1e-12 * max(1.0, abs(w)):
            break
    return max(w, 0.0)


def mixture_log_evidence(excess: float, variance: float, components: tuple[Component, ...]) -> float:
    """ln Lambda of a weighted sum of ``log_evidence``'s mixtures: the weighted average of their ratios, in logs.

    Each part's ratio is a nonnegative martingale under the null, so their
    weighted average is one too (Ville's inequality holds for it), and a
    log-sum-exp of convex functions stays increasing and convex in the excess.
    """
    top, shares = _weighted_parts(excess, variance, components)
    return top + math.log(sum(shares))


def mixture_half_width(variance: float, components: tuple[Component, ...], alpha: float) -> float:
    """``half_width`` for a weighted sum of mixtures: the excess at which its evidence reaches ``1/alpha``.

    Newton's method from above, as in ``half_width``: each part alone
    reaches ``1/alpha`` at its own width for ``alpha * weight``, and the sum is
    at least that part, so the narrowest of those widths is at or above the root.
    """
    if len(components) == 1:
        _, tau, centre = components[0]
        return half_width(variance, tau, alpha, centre)
    target = math.log(1 / alpha)
    w = min(half_width(variance, tau, alpha * weight, centre) for weight, tau, centre in components)
    for _ in range(100):
        top, shares = _weighted_parts(w, variance, components)
        total = sum(shares)
        gap = top + math.log(total) - target
        slope = sum(
            share / total * _slope(w, variance, tau, centre)
            for share, (_, tau, centre) in zip(shares, components, strict=True)
        )
        step = gap / slope
        w -= step
        if abs(step) < 1e-12 * max(1.0, abs(w)):
            break
    return max(w, 0.0)


def _weighted_parts(excess: float, variance: float, components: tuple[Component, ...]) -> tuple[float, list[float]]:
    """The largest ``ln(weight * Lambda)`` of the parts, and each part's ``weight * Lambda`` scaled by its exp.

    Scaled so that a ratio beyond a float's range (``Lambda`` of e^800)
    still sums: the sum's log is the top plus the log of the scaled sum.
    """
    logs = [math.log(weight) + log_evidence(excess, variance, tau, centre) for weight, tau, centre in components]
    top = max(logs)
    return top, [math.exp(value - top) for value in logs]


def _slope(excess: float, variance: float, tau: float, centre: float) -> float:
    """d ln Lambda / d excess of ``log_evidence`` (any centre, 0 included)."""
    root_precision = math.sqrt(1.0 / variance + 1.0 / (tau * tau))
    y = (excess / variance + centre / (tau * tau)) / root_precision
    return (y + _normal_pdf_over_cdf(y)) / (variance * root_precision)


def _mixture(scale: float, fail: bool) -> tuple[Component, ...]:
    """One side's mixing distribution, for a per-request standard deviation ``scale`` at the limit."""
    if not fail:
        return ((1.0, TAU_SCALE * scale, 0.0),)
    parts = (
        (1.0 - FAIL_WIDE_SHARE, FAIL_TAU_SCALE * scale, FAIL_CENTRE_SCALE * scale),
        (FAIL_WIDE_SHARE, FAIL_WIDE_TAU_SCALE * scale, 0.0),
    )
    return tuple(part for part in parts if part[0] > 0)  # a part of no weight adds nothing (and has no log)


def _log_normal_cdf(x: float) -> float:
    if x > -20:
        return math.log(0.5 * math.erfc(-x / math.sqrt(2.0)))
    return -0.5 * x * x - math.log(-x) - 0.5 * math.log(2 * math.pi)  # the tail's leading term


def _normal_pdf_over_cdf(x: float) -> float:
    return math.exp(-0.5 * x * x - 0.5 * math.log(2 * math.pi) - _log_normal_cdf(x))


def _check_level(alpha: float) -> None:
    if not (math.isfinite(alpha) and 0.0 < alpha < 0.5):
        raise ValueError(f"alpha is {alpha}: must be greater than 0 and less than 0.5")


def _finite(counts: Counts) -> bool:
    return math.isfinite(counts.numerator) and math.isfinite(counts.denominator)


def _bad(counts: Counts, limit_name: Limit) -> tuple[float, float]:
    """Bad outcomes and trials, cleaned: no negative counts, at most as many events as trials."""
    trials = max(counts.denominator, 0.0)
    events = min(max(counts.numerator, 0.0), trials)
    return (trials - events, trials) if _HIGHER_IS_BETTER[limit_name] else (events, trials)


def _needed(rate_at_limit: float) -> float:
    rarer = min(rate_at_limit, 1.0 - rate_at_limit)
    return MIN_EVENTS / rarer if rarer > 0 else math.inf


def _shown_bad(bad: float, bad_rate_at_limit: float) -> bool:
    """Has the candidate shown ``MIN_EVENTS`` bad outcomes where bad is the rarer outcome at the limit?

    Such a candidate may be failed before the expected count is reached
    (see the module docstring); where good is the rarer outcome at the
    limit, more bad outcomes would make the approximation worse, not better.
    """
    return bad_rate_at_limit < 0.5 and bad >= MIN_EVENTS


def _decide(
    metric: str,
    limit_name: Limit,
    limit: float,
    candidate: Counts,
    stable: Counts | None,
    alpha: float,
    needed: float,
    bad_estimate: float,
    bad_limit: float,
    variance: float,
    scale: float,
    may_pass: bool = True,
) -> SequentialResult:
    """The verdict from the evidence; ``may_pass`` False: before the expected count, only a fail is decided."""
    excess = bad_estimate - bad_limit
    ln_evidence = mixture_log_evidence(abs(excess), variance, _mixture(scale, fail=excess > 0))  # that side's
    convinced = ln_evidence >= math.log(1 / alpha)
    verdict: Verdict = "inconclusive"
    if convinced and excess > 0:
        verdict = "fail"
    elif convinced and excess < 0 and may_pass:
        verdict = "pass"
    estimate = 1 - bad_estimate if limit_name == "min" else bad_estimate  # the value is 1 - r
    evidence = math.exp(min(ln_evidence, 700.0))
    early = "" if may_pass else f"judged early on the bad outcomes shown: a pass needs {math.ceil(needed)} requests"
    return SequentialResult(
        metric=metric,
        verdict=verdict,
        limit_name=limit_name,
        limit=limit,
        candidate=candidate,
        stable=stable,
        compared=_COMPARED[limit_name],
        estimate=estimate,
        evidence=evidence,
        variance=variance,
        scale=scale,
        alpha=alpha,
        needed=needed,
        note=early,
    )


def _unjudgeable(
    metric: str,
    verdict: Verdict,
    limit_name: Limit,
    limit: float,
    candidate: Counts,
    stable: Counts | None,
    alpha: float,
    needed: float,
) -> SequentialResult:
    """A result without estimate: too few requests (inconclusive) or a limit no proportion can break (pass)."""
    return SequentialResult(
        metric=metric,
        verdict=verdict,
        limit_name=limit_name,
        limit=limit,
        candidate=candidate,
        stable=stable,
        compared=_COMPARED[limit_name],
        estimate=None,
        evidence=None,
        variance=None,
        scale=None,
        alpha=alpha,
        needed=needed,
    )


def _explain(r: SequentialResult) -> str:
    observed = _observed(r.metric, r.candidate, r.stable)
    low, high = r.lower, r.upper
    if r.estimate is None or low is None or high is None or r.evidence is None:
        return f"{observed}: {_unjudged(r)}"
    limit = f"{r.limit_name} {_num(r.limit)}"
    level = f"always-valid at alpha {_num(r.alpha)}"
    evidence = f"evidence {r.evidence:.3g} {'>=' if r.evidence >= 1 / r.alpha else '<'} 1/alpha {1 / r.alpha:.3g}"
    if r.verdict == "inconclusive":
        quantity = "" if r.compared == "value" else f"{r.compared} {_num(r.estimate)} "
        text = f"{quantity}between {_num(low)} and {_num(high)} ({level}): not yet shown beyond or within {limit} ({evidence})"
    elif r.compared != "value":
        if r.verdict == "fail":
            text = f"{r.compared} {_num(r.estimate)} > {limit} with {evidence} ({r.compared} at least {_num(low)}, {level})"
        else:
            text = f"{r.compared} {_num(r.estimate)} within {limit}: at most {_num(high)}, {level} ({evidence})"
    elif r.limit_name == "max":
        if r.verdict == "fail":
            text = f"above {limit} with {evidence} (at least {_num(low)}, {level})"
        else:
            text = f"within {limit}: at most {_num(high)}, {level} ({evidence})"
    elif r.verdict == "fail":
        text = f"below {limit} with {evidence} (at most {_num(high)}, {level})"
    else:
        text = f"within {limit}: at least {_num(low)}, {level} ({evidence})"
    return f"{observed}: {text}"


def _unjudged(r: SequentialResult) -> str:
    limit = f"{r.limit_name} {_num(r.limit)}"
    if not (_finite(r.candidate) and (r.stable is None or _finite(r.stable))):
        return "the counts are not finite numbers: nothing to judge"
    if r.needed == 0:
        return f"{limit} allows every proportion"
    if math.isinf(r.needed):
        return f"{limit} leaves no room for noise: no sample can show it, use a bound inside (0, 1)"
    have = f"candidate {_count(r.candidate.denominator)}"
    if r.stable is not None:
        have += f", stable {_count(r.stable.denominator)}"
    return (
        f"too few requests to judge ({have}; each needs {math.ceil(r.needed)} "
        f"to expect {MIN_EVENTS} of the rarer outcome at {limit})"
    )


def _observed(metric: str, candidate: Counts, stable: Counts | None) -> str:
    text = f"{metric} {_share(candidate)}"
    if stable is not None:
        text += f" vs stable {_share(stable)}"
    return text


def _share(counts: Counts) -> str:
    value = counts.value
    shown = "no data" if value is None else _num(value)
    return f"{shown} ({_count(counts.numerator)}/{_count(counts.denominator)})"


def _num(value: float) -> str:
    return f"{value:.4g}"


def _count(value: float) -> str:
    return f"{value:.0f}" if math.isfinite(value) and abs(value - round(value)) < 0.05 else f"{value:.1f}"
