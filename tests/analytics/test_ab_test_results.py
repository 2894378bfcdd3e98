"""A/B test statistics and assignment without a database: the verdict names a winner only
when significant (with the multiple-comparison correction), and visitor assignment is
stable and follows the traffic split."""

from __future__ import annotations

import uuid
from collections import Counter

import pytest

from app.models.vocabulary import AbTestVerdictReason as R
from app.services.analytics import significance
from app.services.analytics.ab_test_results import MIN_TRIALS, ArmCounts, evaluate
from app.services.analytics.ab_tests import assign

pytestmark = pytest.mark.no_db


def arms(*counts: tuple[int, int]) -> list[ArmCounts]:
    """(successes, trials) per arm, the control first."""
    labels = ["A", "B", "C", "D", "E"]
    return [
        ArmCounts(i, labels[i], None if i == 0 else uuid.uuid4(), 1 / len(counts), s, n)
        for i, (s, n) in enumerate(counts)
    ]


def test_a_clear_difference_names_the_variant() -> None:
    results, verdict = evaluate(arms((50, 1000), (100, 1000)))
    assert (verdict.winner, verdict.reason, verdict.alpha) == ("B", R.SIGNIFICANT, 0.05)
    control, b = results
    assert (control.p_value, control.lift, control.probability_to_beat_control) == (None,) * 3
    assert b.rate == 0.1 and b.lift == pytest.approx(1.0)
    expected = significance.verdict(significance.Arm(50, 1000), significance.Arm(100, 1000))
    assert (b.z, b.p_value, b.probability_to_beat_control) == (
        expected.z,
        expected.p_value,
        expected.probability_to_beat,
    )


def test_no_winner_when_the_difference_is_not_significant() -> None:
    results, verdict = evaluate(arms((100, 1000), (110, 1000)))
    assert (verdict.winner, verdict.reason) == (None, R.NOT_SIGNIFICANT)
    assert results[1].p_value is not None and results[1].p_value > 0.05


def test_no_winner_before_every_arm_has_enough_trials() -> None:
    # A huge difference, but the control has one trial too few.
    results, verdict = evaluate(arms((5, MIN_TRIALS - 1), (400, 1000)))
    assert (verdict.winner, verdict.reason) == (None, R.TOO_FEW_TRIALS)
    assert "A has fewer" in verdict.explanation
    assert results[1].p_value is not None and results[1].p_value < 1e-6  # shown all the same


def test_several_variants_share_the_level() -> None:
    one, two = (100, 1000), (128, 1000)
    p = significance.z_test(significance.Arm(*one), significance.Arm(*two))
    assert p is not None and 0.025 < p.p_value < 0.05  # significant alone, not at 0.05 / 2
    assert evaluate(arms(one, two))[1].winner == "B"
    _, verdict = evaluate(arms(one, two, one))
    assert (verdict.winner, verdict.reason, verdict.alpha) == (None, R.NOT_SIGNIFICANT, 0.025)


def test_two_variants_beating_the_control_need_to_beat_each_other() -> None:
    _, verdict = evaluate(arms((100, 1000), (200, 1000), (205, 1000)))
    assert (verdict.winner, verdict.reason) == (None, R.NOT_SIGNIFICANT)
    assert "C does not beat B" in verdict.explanation
    _, verdict = evaluate(arms((100, 1000), (200, 1000), (300, 1000)))
    assert (verdict.winner, verdict.reason) == ("C", R.SIGNIFICANT)


def test_the_control_wins_when_every_variant_is_worse() -> None:
    _, verdict = evaluate(arms((300, 1000), (100, 1000), (120, 1000)))
    assert (verdict.winner, verdict.reason) == ("A", R.SIGNIFICANT)
    # One worse, one undecided: no winner.
    _, verdict = evaluate(arms((300, 1000), (100, 1000), (290, 1000)))
    assert (verdict.winner, verdict.reason) == (None, R.NOT_SIGNIFICANT)


def test_rates_all_zero_have_nothing_to_test() -> None:
    results, verdict = evaluate(arms((0, 500), (0, 500)))
    assert (verdict.winner, verdict.reason) == (None, R.NO_VARIANCE)
    assert results[1].p_value is None and results[1].lift is None


def test_more_successes_than_trials_is_reported_not_a_crash() -> None:
    results, verdict = evaluate(arms((10, 500), (700, 500)))
    assert (verdict.winner, verdict.reason) == (None, R.INCONSISTENT_COUNTS)
    assert "arm B" in verdict.explanation
    assert results[1].rate == 1.4 and results[1].p_value is None
    assert results[1].probability_to_beat_control is None


def test_assignment_is_stable_and_follows_the_split() -> None:
    test_id, shares = uuid.uuid4(), [0.5, 0.3, 0.2]
    keys = [f"visitor-{i}" for i in range(20_000)]
    arms_of = [assign(test_id, key, shares) for key in keys]
    assert arms_of == [assign(test_id, key, shares) for key in keys]  # stable per key
    counts = Counter(arms_of)
    for index, share in enumerate(shares):
        # sd of a proportion over 20,000 keys is at most 0.0035: 0.012 is over 3 sd.
        assert counts[index] / len(keys) == pytest.approx(share, abs=0.012), counts
    # Another test splits the same visitors independently.
    other = [assign(uuid.uuid4(), key, shares) for key in keys]
    agreement = sum(a == b for a, b in zip(arms_of, other, strict=True)) / len(keys)
    assert agreement == pytest.approx(0.5**2 + 0.3**2 + 0.2**2, abs=0.02)


def test_assignment_never_falls_off_the_end() -> None:
    # Shares whose float sum is a hair under 1: the last arm takes the rest.
    shares = [0.1] * 10
    assert sum(shares) < 1
    seen = {assign(uuid.UUID(int=7), str(i), shares) for i in range(5000)}
    assert seen == set(range(10))
