"""The optional model: training refused on too few decisions, honest switch, factors."""

from __future__ import annotations

import numpy as np
import pytest

from backoffice.screening import model as ml
from backoffice.screening.indicators import CODES, INDICATORS, IndicatorTable
from backoffice.screening.service import ScreeningError
from portal.auth.principal import SYSTEM


def test_training_with_too_few_decisions_is_refused(session):
    with pytest.raises(ScreeningError, match="Too few teacher decisions to train a model: 30 decisions"):
        ml.train(session, SYSTEM, ml.synthetic_decisions(30))


def test_training_with_one_kind_of_decision_is_refused(session):
    ds = ml.synthetic_decisions(100)
    for d in ds:
        d.confirmed = True
    with pytest.raises(ScreeningError, match="at least 10 of each kind"):
        ml.train(session, SYSTEM, ds)


def test_model_trained_on_signal_beats_baselines_and_can_be_switched_on(session):
    m = ml.train(session, SYSTEM, ml.synthetic_decisions(600, seed=1))
    card = m.card
    assert card["auc"] > card["auc_rules"] and card["auc"] > card["auc_school"]
    assert m.beats_baselines and not m.enabled
    assert {g["group"] for g in card["by_sex"]} == {"F", "M"}
    assert all(r["auc_low"] <= r["auc"] <= r["auc_high"] for r in card["by_sex"])
    assert card["calibration"] and 0 <= card["brier"] <= 1
    ml.switch(session, SYSTEM, m.id, True)
    assert ml.enabled_model(session).id == m.id
    ml.switch(session, SYSTEM, m.id, False)
    assert ml.enabled_model(session) is None


def test_model_on_noise_stays_off(session):
    m = ml.train(session, SYSTEM, ml.synthetic_decisions(300, seed=2, signal=0.0))
    if not m.beats_baselines:
        with pytest.raises(ScreeningError, match="stays off"):
            ml.switch(session, SYSTEM, m.id, True)
    # the switch refuses whatever the noise did, when we say it did not beat them
    m.beats_baselines = False
    with pytest.raises(ScreeningError, match="stays off"):
        ml.switch(session, SYSTEM, m.id, True)


def test_scores_and_main_factors(session):
    m = ml.train(session, SYSTEM, ml.synthetic_decisions(600, seed=1))
    t = IndicatorTable(child_ids=np.array([1, 2]))
    for c in CODES:
        t.columns[c] = np.zeros(2, dtype=bool if INDICATORS[c].type == "bool" else float)
    t.columns["help_request"][0] = True
    t.columns["absence_rate_3m"][0] = 0.4
    probs, factors = ml.score_table(m.params, t)
    assert probs[0] > probs[1]
    assert {f["indicator"] for f in factors[0]} >= {"help_request", "absence_rate_3m"}
