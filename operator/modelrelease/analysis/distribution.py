"""Judging whole distributions on pooled counts: prediction drift (label-free) and AUC (Mann-Whitney on buckets).

Why here and not in ``sequential``: both compare many counts at once, yet
reduce to the same always-valid normal-mixture bounds (``sequential.half_width``
and ``log_evidence``), so their guarantees survive any number of looks in the
same, asymptotic, sense.

**Prediction drift** compares the candidate's distribution of predicted
classes with the stable version's on the same traffic; it needs no labels,
so it guards shadow stages and models whose labels arrive late.  The effect
size is the total variation distance ``TV = 1/2 sum_k |p_c(k) - p_s(k)|``
(the largest difference in the share of any set of classes): a huge stream
does not fail a harmless shift, only one larger than ``max``.  Each class's
difference ``d_k`` gets an always-valid interval at level ``alpha / (2K)``
(Bonferroni over the ``K`` classes seen and both sides), so with probability
``1 - alpha`` all of them hold at every look at once; then
``TV_low = max(1/2 sum max(0, |d_k| - w_k), max_k |d_k| - w_k)`` (TV is at
least any one class's difference) and ``TV_high = 1/2 sum (|d_k| + w_k)``
bound TV simultaneously.  **fail** when ``TV_low > max``, **pass** when
``TV_high <= max``, inconclusive otherwise, and always while either version
has fewer than ``MIN_EVENTS`` answers per class seen.

**AUC** is the Mann-Whitney statistic over bucketed scores: with ``p_b`` and
``n_b`` the positives and negatives whose score fell in bucket ``b``,
``AUC = sum_b p_b (N_below_b + n_b / 2) / (P N)`` (ties within a bucket count
half).  Its variance is Hanley and McNeil's ("The meaning and use of the area
under a ROC curve", Radiology 143, 1982).  Bounds (``min`` on the candidate's
AUC, ``compareToBaseline.maxDrop`` on the drop from the stable version's) are
judged by the one-sided normal-mixture test of ``sequential`` on that
estimate and variance; each version needs ``MIN_EVENTS`` positives and
negatives first.  Buckets make AUC a little coarse (ties), equally for both
versions.

Pure functions, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from modelrelease.analysis.sequential import MIN_EVENTS, TAU_SCALE, half_width, log_evidence
from modelrelease.api.status import BoundResult, Verdict


@dataclass(frozen=True)
class DistributionVerdict:
    verdict: Verdict
    bound: BoundResult


def total_variation(
    metric: str, candidate: Mapping[str, float], stable: Mapping[str, float], limit: float, alpha: float
) -> DistributionVerdict:
    """Is the candidate's class distribution further than ``limit`` (TV) from the stable version's?"""
    classes = sorted(set(candidate) | set(stable))
    n_c, n_s = sum(candidate.values()), sum(stable.values())
    k = max(len(classes), 2)
    needed = MIN_EVENTS * k
    shown = f"{metric}: candidate {n_c:.0f} answers, stable {n_s:.0f}"
    if n_c < needed or n_s < needed:
        reason = f"{shown}: too few answers to judge ({needed} each needed: {MIN_EVENTS} per class seen)"
        return DistributionVerdict(
            "inconclusive", BoundResult(bound="max", limit=limit, verdict="inconclusive", reason=reason)
        )
    level = alpha / (2 * k)
    estimate = low = high = largest = 0.0
    for label in classes:
        p_c, p_s = candidate.get(label, 0.0) / n_c, stable.get(label, 0.0) / n_s
        pooled = (candidate.get(label, 0.0) + stable.get(label, 0.0)) / (n_c + n_s)
        if pooled <= 0:
            continue
        variance = max(p_c * (1 - p_c) / n_c + p_s * (1 - p_s) / n_s, pooled * (1 - pooled) * (1 / n_c + 1 / n_s))
        tau = TAU_SCALE * math.sqrt(2 * pooled * (1 - pooled)) if pooled < 1 else TAU_SCALE
        width = half_width(max(variance, 1e-15), tau, level)
        difference = abs(p_c - p_s)
        estimate += difference / 2
        low += max(0.0, difference - width) / 2
        largest = max(largest, difference - width)
        high += (difference + width) / 2
    low = max(low, largest)  # TV is at least any one class's difference
    verdict: Verdict = "fail" if low > limit else "pass" if high <= limit else "inconclusive"
    words = {"fail": "beyond", "pass": "within", "inconclusive": "not yet shown beyond or within"}[verdict]
    reason = (
        f"{shown}: total variation {estimate:.4g}, between {low:.4g} and {high:.4g} "
        f"(always-valid at alpha {alpha:.4g}, split over {k} classes): {words} max {limit:.4g}"
    )
    bound = BoundResult(
        bound="max",
        limit=limit,
        verdict=verdict,
        compared="total variation",
        estimate=estimate,
        lower=low,
        upper=high,
        alpha=alpha,
        reason=reason,
    )
    return DistributionVerdict(verdict, bound)


@dataclass(frozen=True)
class Auc:
    value: float
    positives: float
    negatives: float

    @property
    def variance(self) -> float:
        """Hanley and McNeil's variance of the AUC estimate."""
        a, p, n = self.value, self.positives, self.negatives
        q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
        return max((a * (1 - a) + (p - 1) * (q1 - a * a) + (n - 1) * (q2 - a * a)) / (p * n), 1e-12)


def auc_from_buckets(positives: Mapping[float, float], negatives: Mapping[float, float]) -> Auc | None:
    """Mann-Whitney AUC from cumulative bucket counts (``le`` -> count at or below), ties counted half."""
    bounds = sorted(set(positives) | set(negatives))
    total_p, total_n = max(positives.values(), default=0.0), max(negatives.values(), default=0.0)
    if total_p <= 0 or total_n <= 0:
        return None
    wins = 0.0
    below_p = below_n = 0.0
    for bound in bounds:
        cum_p, cum_n = max(positives.get(bound, below_p), below_p), max(negatives.get(bound, below_n), below_n)
        in_p, in_n = cum_p - below_p, cum_n - below_n
        wins += in_p * (below_n + in_n / 2)
        below_p, below_n = cum_p, cum_n
    return Auc(wins / (total_p * total_n), total_p, total_n)


def auc_bound(
    metric: str, candidate: Auc | None, stable: Auc | None, bound: str, limit: float, alpha: float
) -> DistributionVerdict:
    """``min`` on the candidate's AUC, or ``maxDrop`` from the stable version's, judged sequentially."""
    versions = [("candidate", candidate)] + ([("stable", stable)] if bound == "maxDrop" else [])
    shown = f"{metric} " + ", ".join(
        f"{who} {a.value:.4g} ({a.positives:.0f} positives, {a.negatives:.0f} negatives)" if a else f"{who} no data"
        for who, a in versions
    )
    short = [who for who, a in versions if a is None or min(a.positives, a.negatives) < MIN_EVENTS]
    if short:
        reason = f"{shown}: too few to judge ({', '.join(short)}: {MIN_EVENTS} positives and negatives each needed)"
        return DistributionVerdict(
            "inconclusive", BoundResult(bound=bound, limit=limit, verdict="inconclusive", reason=reason)
        )
    assert candidate is not None
    if bound == "maxDrop":
        assert stable is not None
        estimate = stable.value - candidate.value  # the drop; higher is worse
        variance = candidate.variance + stable.variance
        compared = "drop"
    else:
        estimate = candidate.value
        variance = candidate.variance
        compared = "value"
    reference = limit if bound == "min" else min(max(candidate.value, 0.5), 0.999)
    tau = TAU_SCALE * math.sqrt(reference * (1 - reference)) if 0 < reference < 1 else TAU_SCALE
    excess = (estimate - limit) if bound == "maxDrop" else (limit - estimate)  # > 0: worse than allowed
    ln_evidence = log_evidence(abs(excess), variance, tau)
    convinced = ln_evidence >= math.log(1 / alpha)
    verdict: Verdict = "inconclusive"
    if convinced:
        verdict = "fail" if excess > 0 else "pass"
    width = half_width(variance, tau, alpha)
    words = {"fail": "beyond", "pass": "within", "inconclusive": "not yet shown beyond or within"}[verdict]
    reason = (
        f"{shown}: {compared} {estimate:.4g} between {estimate - width:.4g} and {estimate + width:.4g} "
        f"(always-valid at alpha {alpha:.4g}): {words} {bound} {limit:.4g}"
    )
    evidence = math.exp(min(ln_evidence, 700.0))
    return DistributionVerdict(
        verdict,
        BoundResult(
            bound=bound,
            limit=limit,
            verdict=verdict,
            compared=compared,
            estimate=estimate,
            lower=estimate - width,
            upper=estimate + width,
            evidence=evidence,
            alpha=alpha,
            reason=reason,
        ),
    )
