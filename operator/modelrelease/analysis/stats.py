"""Confidence bounds for proportions, so that a verdict of *fail* means evidence, not noise.

Why: a check looks at one analysis interval, often a few dozen labelled
answers.  With 100 answers a model that is truly 96% accurate shows below
95% in roughly one check out of three; judged on the point value alone,
``failureLimit: 2`` would roll a good model back most days.  So a proportion
fails a bound only when the whole one-sided 95% confidence interval lies
beyond it, and passes when its observed value is within it (with at least a
minimum sample, see ``judge``); in between, the check is inconclusive and
the stage waits for more data (or pauses after ``inconclusiveLimit``).

Wilson's score interval is used for one proportion: unlike the textbook
normal interval it stays inside [0, 1] and is sensible at 0 or 100%
(no errors at all is the common case for an error rate).  For the
difference between candidate and baseline, Agresti and Caffo's adjustment
(one extra success and one extra failure in each group before the normal
interval) has close to nominal coverage even for small samples.
"""

from __future__ import annotations

import math

Z_ONE_SIDED_95 = 1.6448536269514722
"""z for a one-sided 95% bound: the chance that a fail verdict is due to noise alone is about 5%."""


def wilson_interval(successes: float, trials: float, z: float = Z_ONE_SIDED_95) -> tuple[float, float]:
    """Wilson score interval for ``successes / trials``; each end is a one-sided bound at level ``z``."""
    if trials <= 0:
        return 0.0, 1.0
    p = successes / trials
    z2 = z * z
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / (1 + z2 / trials)
    # min/max absorb rounding at p = 0 or 1, where the exact bound equals p.
    return max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half))


def difference_interval(
    successes_a: float, trials_a: float, successes_b: float, trials_b: float, z: float = Z_ONE_SIDED_95
) -> tuple[float, float]:
    """Agresti-Caffo interval for ``p_a - p_b``; each end is a one-sided bound at level ``z``."""
    p_a = (successes_a + 1) / (trials_a + 2)
    p_b = (successes_b + 1) / (trials_b + 2)
    spread = z * math.sqrt(p_a * (1 - p_a) / (trials_a + 2) + p_b * (1 - p_b) / (trials_b + 2))
    difference = p_a - p_b
    return difference - spread, difference + spread
