"""The guarantee, checked by simulation: a good candidate judged at every interval is rarely failed, however many looks.

Each test draws 2,000 stages of 120 checks with a fixed seed, pools the
counts as the operator does and asks the real ``against_stable`` /
``against_bound`` at every check.  The bound asserted (2% at alpha 0.01) is
twice alpha, loose enough for sampling noise (at a true 1%, 2,000 runs
exceed 2% with probability below 1e-4) and tight enough to fail: the last
test shows a per-check test on the same streams far above it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from modelrelease.analysis.sequential import Counts, against_bound, against_stable

RUNS = 2000
LOOKS = 120
ALPHA = 0.01
BOUND = 0.02


@dataclass(frozen=True)
class Outcome:
    failed: float
    passed: float


def _pooled(rng: np.random.Generator, per_look: int, rate: float) -> NDArray[np.int64]:
    return rng.binomial(per_look, rate, size=(RUNS, LOOKS)).cumsum(axis=1)


def _versus_stable(
    seed: int, candidate_rate: float, stable_rate: float, per_look: tuple[int, int], limit: str, margin: float
) -> Outcome:
    """Share of stages that ever fail, and that ever pass, judging ``numerator`` rates of both versions."""
    rng = np.random.default_rng(seed)
    n_c, n_s = per_look
    c, s = _pooled(rng, n_c, candidate_rate), _pooled(rng, n_s, stable_rate)
    failed = passed = 0
    for run in range(RUNS):
        ever_passed = False
        for look in range(LOOKS):
            verdict = against_stable(
                "m",
                Counts(float(c[run, look]), float(n_c * (look + 1))),
                Counts(float(s[run, look]), float(n_s * (look + 1))),
                limit,  # type: ignore[arg-type]
                margin,
                ALPHA,
            ).verdict
            ever_passed |= verdict == "pass"
            if verdict == "fail":
                failed += 1
                break
        passed += ever_passed
    return Outcome(failed / RUNS, passed / RUNS)


def test_a_candidate_as_accurate_as_stable_is_almost_never_rolled_back_in_120_checks() -> None:
    outcome = _versus_stable(1, 0.95, 0.95, (50, 50), "maxDrop", 0.01)
    assert outcome.failed < BOUND


def test_a_candidate_exactly_at_max_drop_is_failed_and_passed_at_most_about_alpha() -> None:
    outcome = _versus_stable(2, 0.94, 0.95, (50, 50), "maxDrop", 0.01)
    assert outcome.failed < BOUND
    assert outcome.passed < BOUND


def test_the_guarantee_holds_for_a_small_canary_against_a_busy_stable_version() -> None:
    # 5% of the traffic on the candidate: the stable version sees 19 times its requests.
    outcome = _versus_stable(3, 0.94, 0.95, (20, 380), "maxDrop", 0.01)
    assert outcome.failed < BOUND


def test_an_error_rate_exactly_at_max_increase_is_rarely_failed() -> None:
    outcome = _versus_stable(4, 0.015, 0.01, (300, 300), "maxIncrease", 0.005)
    assert outcome.failed < BOUND


def test_an_error_rate_exactly_at_its_max_is_rarely_failed() -> None:
    rng = np.random.default_rng(5)
    per_look = 100
    errors = _pooled(rng, per_look, 0.01)
    failed = 0
    for run in range(RUNS):
        for look in range(LOOKS):
            if (
                against_bound(
                    "error-rate", Counts(float(errors[run, look]), float(per_look * (look + 1))), "max", 0.01, ALPHA
                ).verdict
                == "fail"
            ):
                failed += 1
                break
    assert failed / RUNS < BOUND


def test_a_clearly_worse_candidate_is_caught_so_the_guarantee_is_not_bought_by_never_failing() -> None:
    outcome = _versus_stable(6, 0.90, 0.95, (50, 50), "maxDrop", 0.01)
    assert outcome.failed > 0.95
    assert outcome.passed == 0


def test_a_test_at_alpha_on_every_check_breaks_the_same_bound_on_the_same_streams() -> None:
    """The contrast that shows the simulation can fail: a z-test at 1% on the pooled counts at each check."""
    rng = np.random.default_rng(2)
    n = 50
    c, s = _pooled(rng, n, 0.94), _pooled(rng, n, 0.95)
    trials = n * np.arange(1, LOOKS + 1)
    p_c, p_s = c / trials, s / trials
    spread = np.sqrt((p_c * (1 - p_c) + p_s * (1 - p_s)) / trials)
    z_one_sided_99 = 2.3263478740408408
    ever = ((p_s - p_c - 0.01) / np.maximum(spread, 1e-12) > z_one_sided_99).any(axis=1)
    assert ever.mean() > 2 * BOUND
