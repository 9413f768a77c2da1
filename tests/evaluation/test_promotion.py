"""Champion/challenger: never promote a candidate worse on any configured metric."""

import numpy as np
import pytest

from audio2photoreal_pipelines.evaluation.promotion import should_promote

RULES = [{"metric": "FD_g", "mode": "min"}, {"metric": "lip_corr", "mode": "max"}]


def test_promotes_without_champion():
    assert should_promote({"FD_g": 5.0, "lip_corr": 0.1}, None, RULES) == (True, "no champion yet")


def test_promotes_when_better_on_one_and_equal_on_other():
    ok, reason = should_promote(
        {"FD_g": 1.0, "lip_corr": 0.5}, {"FD_g": 2.0, "lip_corr": 0.5}, RULES
    )
    assert ok and "FD_g" in reason


def test_rejects_a_trade_off():
    ok, reason = should_promote(
        {"FD_g": 1.0, "lip_corr": 0.4}, {"FD_g": 2.0, "lip_corr": 0.5}, RULES
    )
    assert not ok and "lip_corr" in reason


def test_rejects_an_equal_candidate():
    same = {"FD_g": 1.0, "lip_corr": 0.5}
    assert should_promote(dict(same), same, RULES)[0] is False


def test_never_promotes_a_worse_candidate_over_random_pairs():
    rng = np.random.default_rng(0)
    promoted = 0
    for _ in range(2000):
        # Coarse values so that ties happen too.
        cand, champ = (
            dict(zip(("FD_g", "lip_corr"), rng.integers(0, 3, 2) / 2, strict=True))
            for _ in range(2)
        )
        ok, _ = should_promote(cand, champ, RULES)
        no_worse = cand["FD_g"] <= champ["FD_g"] and cand["lip_corr"] >= champ["lip_corr"]
        assert ok == (no_worse and cand != champ)
        promoted += ok
    assert promoted > 0


def test_missing_metric_is_a_clear_error():
    with pytest.raises(KeyError, match="champion has no metric 'lip_corr'"):
        should_promote({"FD_g": 1.0, "lip_corr": 0.5}, {"FD_g": 2.0}, RULES)
    with pytest.raises(KeyError, match="candidate has no metric 'FD_g'"):
        should_promote({"lip_corr": 0.5}, None, RULES)


def test_bad_rules_and_non_finite_values_are_errors():
    with pytest.raises(ValueError, match="mode"):
        should_promote({"FD_g": 1.0}, None, [{"metric": "FD_g", "mode": "lower"}])
    with pytest.raises(ValueError, match="no rules"):
        should_promote({"FD_g": 1.0}, None, [])
    with pytest.raises(ValueError, match="not finite"):
        should_promote({"FD_g": float("nan"), "lip_corr": 0.5}, None, RULES)
