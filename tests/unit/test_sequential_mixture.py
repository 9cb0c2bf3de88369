"""The mixing distributions behind the sequential judge: the closed form, its inverse, and the interval built from both sides."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from modelrelease.analysis.sequential import (
    FAIL_CENTRE_SCALE,
    FAIL_TAU_SCALE,
    TAU_SCALE,
    Counts,
    against_bound,
    half_width,
    log_evidence,
)

PROPERTY = settings(max_examples=300, deadline=None, derandomize=True, database=None)
variances = st.floats(1e-7, 1e-2)
scales = st.floats(0.05, 0.5)  # a per-request standard deviation
levels = st.sampled_from([0.01, 0.0025, 0.001])


def _by_quadrature(excess: float, variance: float, tau: float, centre: float) -> float:
    """The mixture likelihood ratio integrated numerically: a normal of ``centre``, ``tau`` truncated to >= 0."""
    mass = stats.norm.sf(0.0, centre, tau)

    def integrand(delta: float) -> float:
        ratio = math.exp(delta * excess / variance - delta * delta / (2 * variance))
        return ratio * stats.norm.pdf(delta, centre, tau) / mass

    spread = math.sqrt(1 / (1 / variance + 1 / tau**2))
    peak = max((excess / variance + centre / tau**2) * spread**2, 0.0)
    value, _ = integrate.quad(integrand, 0.0, peak + 12 * spread + centre + 12 * tau, points=[peak], limit=200)
    return math.log(value)


@pytest.mark.parametrize(
    ("excess", "variance", "tau", "centre"),
    [(0.02, 1.5e-4, 0.019, 0.034), (0.0, 1.5e-4, 0.019, 0.034), (0.05, 1e-3, 0.01, 0.03), (0.004, 1e-5, 0.005, 0.009)],
)
def test_the_closed_form_is_the_mixture_integrated(excess: float, variance: float, tau: float, centre: float) -> None:
    assert log_evidence(excess, variance, tau, centre) == pytest.approx(
        _by_quadrature(excess, variance, tau, centre), abs=1e-6
    )


def test_a_centre_of_zero_is_the_half_normal_mixture() -> None:
    for excess in (0.0, 0.01, 0.05):
        assert log_evidence(excess, 1.5e-4, 0.037, 1e-12) == pytest.approx(
            log_evidence(excess, 1.5e-4, 0.037), abs=1e-8
        )


@PROPERTY
@given(variances, scales, levels)
def test_half_width_solves_the_fail_side_evidence_at_one_over_alpha(
    variance: float, scale: float, alpha: float
) -> None:
    tau, centre = FAIL_TAU_SCALE * scale, FAIL_CENTRE_SCALE * scale
    width = half_width(variance, tau, alpha, centre)
    assert width > 0
    assert log_evidence(width, variance, tau, centre) == pytest.approx(math.log(1 / alpha), abs=1e-7)
    assert log_evidence(width * 0.999, variance, tau, centre) < math.log(1 / alpha)


@PROPERTY
@given(variances, scales, st.floats(0.0, 0.2), st.floats(0.0, 0.2))
def test_more_excess_is_more_evidence(variance: float, scale: float, a: float, b: float) -> None:
    tau, centre = FAIL_TAU_SCALE * scale, FAIL_CENTRE_SCALE * scale
    low, high = sorted((a, b))
    assert log_evidence(low, variance, tau, centre) <= log_evidence(high, variance, tau, centre) + 1e-12


def test_the_fail_side_needs_less_excess_than_the_half_normal_for_the_regressions_it_is_centred_on() -> None:
    # 900 requests per version, 7.5% wrong answers at the margin: the sample where a 5-point drop is decided.
    scale = math.sqrt(0.08 * 0.92 + 0.07 * 0.93)
    variance = scale**2 / 900
    centred = half_width(variance, FAIL_TAU_SCALE * scale, 0.01, FAIL_CENTRE_SCALE * scale)
    half_normal = half_width(variance, TAU_SCALE * scale, 0.01)
    assert centred / math.sqrt(variance) < 3.25 < 3.3 < half_normal / math.sqrt(variance)


@PROPERTY
@given(
    st.integers(1, 200_000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))),
    st.floats(0.01, 0.99),
    levels,
    st.sampled_from(["min", "max"]),
)
def test_the_interval_against_a_bound_explains_the_verdict(
    counts: tuple[int, int], bound: float, alpha: float, limit: str
) -> None:
    events, n = counts
    result = against_bound("m", Counts(events, n), limit, bound, alpha)  # type: ignore[arg-type]
    if result.lower is None or result.upper is None or result.estimate is None:
        return
    assert result.lower <= result.estimate <= result.upper
    tolerance = 1e-9
    beyond = result.upper < bound + tolerance if limit == "min" else result.lower > bound - tolerance
    within = result.lower > bound - tolerance if limit == "min" else result.upper < bound + tolerance
    if result.verdict == "fail":
        assert beyond
    elif result.verdict == "pass":
        assert within
    else:
        assert result.lower <= bound + tolerance and result.upper >= bound - tolerance
