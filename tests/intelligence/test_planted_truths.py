"""The intelligence math finds the truths planted in a small seeded history (computed, not hard-coded).

The same measures as bench/intelligence, on fewer leads: the best contact hours are the planted
ones, the lead score ranks held-out leads (AUC) and is calibrated better than the base rate, the
referral and fast-response effects come out as the top factors, and the forecast's error on
held-out months is bounded.
"""

from __future__ import annotations

import pytest

from app.domains.intelligence import contact_time_rules, score_rules
from bench.intelligence import evaluate
from bench.intelligence.history import PLANTED_SLOTS, REFERRALS, generate


@pytest.fixture(scope="module")
def history():
    return generate(seed=2026, leads=4000, months=24)


def test_the_top_three_contact_hours_are_planted_ones(history):
    precision, top = evaluate.slot_precision(history)
    assert precision >= 2 / 3, [(slot // 24, slot % 24) for slot in top]


def test_a_slot_rate_is_pulled_toward_the_clinic_rate_when_it_has_few_calls():
    calls, answered = [0] * contact_time_rules.HOURS_OF_WEEK, [0] * contact_time_rules.HOURS_OF_WEEK
    calls[10], answered[10] = 2, 2  # two answered calls: not a 100% hour
    calls[11], answered[11] = 400, 100
    rates = contact_time_rules.smooth(calls, answered)
    assert rates.overall < rates.rate(10) < 0.5
    assert rates.rate(11) == pytest.approx(100 / 400, abs=0.02)
    assert rates.rate(50) == pytest.approx(rates.overall)  # never called: the clinic's rate


def test_the_lead_score_ranks_held_out_leads_and_beats_the_base_rate(history):
    quality = evaluate.score_quality(history)
    assert quality.auc >= 0.75
    # A constant prediction at the base rate scores p(1-p); the model must be better calibrated.
    assert quality.brier < quality.base_rate * (1 - quality.base_rate)


def test_the_planted_effects_come_out_of_the_model(history):
    model = evaluate.score_quality(history).model
    weights = dict(zip(model.features, model.coefficients, strict=True))
    others = [w for name, w in weights.items() if name.startswith("source:") and name[7:] not in REFERRALS]
    assert min(weights[f"source:{r}"] for r in REFERRALS) > max(others)
    assert weights["response:within_1h"] > 0.3  # a doubled conversion is about +0.7 in log-odds

    referral = score_rules.LeadFacts("DOCTOR_REFERRAL", ("INVISALIGN",), "child", 0.2, 0, 2)
    factors = [f["feature"] for f in score_rules.score(model, referral).factors]
    assert "source:DOCTOR_REFERRAL" in factors and len(factors) == 3


def test_the_forecast_error_on_held_out_months_is_bounded(history):
    error, rows = evaluate.forecast_mape(history, origins=4)
    assert len(rows) == 12
    assert error < 0.3, rows


def test_scoring_is_the_same_as_scikit_learn(history):
    """The stored-coefficient scorer matches scikit-learn's own predict_proba."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    train, test = evaluate.split(history)
    rows = [score_rules.feature_vector(lead.facts()) for lead in train]
    labels = [int(lead.converted_within()) for lead in train]
    model = score_rules.fit(rows, labels, version="t")
    reference = LogisticRegression(C=1.0, max_iter=500).fit(np.asarray(rows), np.asarray(labels))
    sample = [score_rules.feature_vector(lead.facts()) for lead in test[:50]]
    expected = reference.predict_proba(np.asarray(sample))[:, 1]
    got = [score_rules.score(model, lead.facts()).probability for lead in test[:50]]
    assert got == pytest.approx(list(expected), abs=1e-9)


def test_planted_slots_are_weekday_noons_and_five_pms():
    assert {(s // 24, s % 24) for s in PLANTED_SLOTS} == {(d, h) for d in range(5) for h in (12, 17)}
