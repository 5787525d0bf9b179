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


def test_model_card_by_group_with_intervals_and_fairlearn_gaps(session):
    m = ml.train(session, SYSTEM, ml.synthetic_decisions(600, seed=1))
    card = m.card
    for dim in ("by_sex", "by_grade", "by_school"):
        assert card[dim], dim
        for g in card[dim]:
            assert g["precision_at_k_low"] <= g["precision_at_k"] <= g["precision_at_k_high"]
            assert 0 <= g["predicted"] <= 1
        fair = card["fairness"][dim]
        assert set(fair["by_group"]) == {g["group"] for g in card[dim]}
        assert set(fair["difference"]) == {"selection_rate", "recall", "precision"}
    sex = card["fairness"]["by_sex"]
    rates = [row["selection_rate"] for row in sex["by_group"].values()]
    assert sex["difference"]["selection_rate"] == pytest.approx(max(rates) - min(rates), abs=0.002)
    assert [g["group"] for g in card["by_school"]] == ["S1", "S2", "S3"]


def test_model_card_document_in_both_languages(session, make, login, client):
    m = ml.train(session, SYSTEM, ml.synthetic_decisions(400, seed=1))
    steward_ja, steward_en = make.staff("data_steward"), make.staff("data_steward", locale="en")
    session.commit()
    login(steward_ja)
    ja = client.get(f"/staff/screening/model/{m.id}/card.md")
    assert ja.status_code == 200 and ja.mimetype == "text/markdown"
    ja_text = ja.get_data(as_text=True)
    client.get("/logout")
    login(steward_en)
    en_text = client.get(f"/staff/screening/model/{m.id}/card.md").get_data(as_text=True)
    for text in (ja_text, en_text):
        assert f"{m.card['auc']} ({m.card['auc_low']}–{m.card['auc_high']})" in text
        assert "S1" in text and "fairlearn" in text
    assert "## Intended use" in en_text and "## Out of scope" in en_text and "By sex" in en_text
    assert "Intended use" not in ja_text
    assert client.get("/staff/screening/model/999999/card.md").status_code == 404


def test_manual_flag_records_the_indicators_the_model_learns_from(session, make, consented, records, as_principal):
    from datetime import date

    from backoffice.screening import service

    teacher, klass = make.teacher_with_class(grade=4)
    child = consented(klass)
    today = date.today()
    records.attendance(child, date(today.year, today.month, 1), absent=5)
    flag = service.raise_manual_flag(session, as_principal(teacher), child.id, "Looks tired")
    assert flag.features["absence_days_3m"] == 5 and flag.features["absence_rate_3m"] == 0.25
    flag = service.resolve_flag(session, as_principal(teacher), flag.id, "support", outcome="confirmed")
    [d] = ml.decisions_from_flags(session)
    assert d.confirmed and d.features["absence_days_3m"] == 5 and d.rule_score == 0


def test_enabled_model_orders_the_queue_and_shows_factors_then_switches_off(
    session, make, consented, records, as_principal
):
    from datetime import date

    from backoffice.screening import service

    a, b = as_principal(make.staff("data_steward")), as_principal(make.staff("data_steward"))
    rs = service.draft_rule_set(session, a, "", "absent [2]: absence_rate_3m >= 10%")
    service.submit_rule_set(session, a, rs.id)
    service.approve_rule_set(session, b, rs.id)
    teacher, klass = make.teacher_with_class(grade=5)
    mild, worrying = consented(klass), consented(klass)
    for m in (5, 6, 7):
        records.attendance(mild, date(2026, m, 1), absent=2)
        records.attendance(worrying, date(2026, m, 1), absent=2, nurse=4)
    records.signal(worrying, "help_request", days_ago=3)
    m = ml.train(session, SYSTEM, ml.synthetic_decisions(600, seed=1))
    ml.switch(session, SYSTEM, m.id, True)

    service.run_screening(session, SYSTEM, trigger="test", as_of=date(2026, 7, 15))
    queue = service.queue(session, as_principal(teacher))
    assert [e["child"].id for e in queue] == [worrying.id, mild.id]  # same urgency: the model orders
    top = queue[0]["flags"][0]
    assert top.model_score > queue[1]["flags"][0].model_score
    assert "Asked for help" in service.describe_factors(top, "en")
    assert service.describe_reasons(top, "en") == [
        "Absent on 10% of school days in the last 3 months (threshold ≥ 10%)"
    ]  # the reasons stay the rule's facts: the model never changes why a child is flagged

    ml.switch(session, SYSTEM, m.id, False)
    session.expire_all()
    assert all(f.model_score is None for e in service.queue(session, as_principal(teacher)) for f in e["flags"])
