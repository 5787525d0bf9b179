"""Every indicator the issue lists: present, defined for a teacher in both languages, computed through the gate."""

from __future__ import annotations

from datetime import date

from flask_babel import force_locale

from backoffice.screening import indicators

from .conftest import AS_OF

LISTED = {
    "absence_days_3m", "absence_rate_3m", "absence_days_year", "absence_30_days", "absence_rising", "late_days_3m",
    "nurse_visits_3m", "health_check_missed", "untreated_caries", "lunch_arrears_months", "school_cost_assistance",
    "public_assistance", "single_parent_allowance", "low_mood", "who5_low", "family_worries", "help_request",
}


def test_every_listed_indicator_has_a_definition_in_japanese_and_english():
    assert set(indicators.CODES) == LISTED
    for ind in indicators.INDICATORS.values():
        with force_locale("en"):
            en = (str(ind.label), str(ind.definition), str(ind.fact))
        with force_locale("ja"):
            ja = (str(ind.label), str(ind.definition), str(ind.fact))
        for a, b in zip(en, ja, strict=True):
            assert a and b and a != b, ind.code  # translated, not left in English
        assert ind.purpose in (indicators.LINKAGE, indicators.SURVEYS)


def test_the_remaining_indicators_from_their_sources(session, make, consented, records):
    _, klass = make.teacher_with_class(grade=8)
    child = consented(klass)
    for m, absent in ((4, 9), (5, 8), (6, 7), (7, 6)):
        records.attendance(child, date(2026, m, 1), absent=absent, late=3, nurse=2)
    records.attendance(child, date(2026, 3, 1), absent=20)  # last school year: not counted for the 30 days
    records.record(child, "health", date(2026, 4, 20), check_status="未受診")
    records.record(child, "shugaku_enjo", date(2026, 4, 10), assistance_class="準要保護")
    records.record(child, "seikatsu_hogo", date(2025, 10, 1), started_on="2025-10-01")
    records.record(child, "jidou_fuyou", date(2026, 1, 10), payment_class="全部停止")  # suspended: not received
    records.signal(child, "who5_poor", days_ago=50)
    records.signal(child, "family_worries", days_ago=80)
    records.signal(child, "help_request", days_ago=5)

    row = indicators.compute(session, AS_OF).row(0)
    assert row["absence_days_year"] == 30 and row["absence_30_days"] is True
    assert row["late_days_3m"] == 9 and row["nurse_visits_3m"] == 6
    assert row["health_check_missed"] is True
    assert row["school_cost_assistance"] is True and row["public_assistance"] is True
    assert row["single_parent_allowance"] is False
    assert row["who5_low"] is True and row["family_worries"] is True and row["help_request"] is True
    assert row["low_mood"] is False


def test_check_in_signals_need_the_survey_purpose(session, make, consented, records):
    _, klass = make.teacher_with_class(grade=5)
    child = consented(klass, purposes=("data_linkage",))
    records.attendance(child, date(2026, 7, 1), absent=2)
    records.signal(child, "help_request", days_ago=2)
    t = indicators.compute(session, AS_OF)
    assert t.row(0)["help_request"] is False and t.row(0)["absence_days_3m"] == 2
    assert t.covered["wellbeing_survey"].tolist() == [False]


def test_narrowed_to_some_children_still_through_the_gate(session, make, consented, records):
    _, klass = make.teacher_with_class(grade=5)
    a, b = consented(klass), consented(klass)
    outsider = make.child(klass)
    for c, n in ((a, 1), (b, 2), (outsider, 3)):
        records.attendance(c, date(2026, 7, 1), absent=n)
    t = indicators.compute(session, AS_OF, child_ids=[b.id, outsider.id])
    assert t.child_ids.tolist() == [b.id]
    assert t.row(0)["absence_days_3m"] == 2
