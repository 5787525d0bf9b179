"""Indicators from linked records and signals, runs, episodes, four eyes, consent withdrawal."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from backoffice.screening import indicators, service
from backoffice.screening.models import Flag, FlagStatus, Resolution, RuleSetStatus
from backoffice.screening.service import ScreeningError
from consent.testing import give_consent
from portal.auth.principal import SYSTEM

from .conftest import AS_OF

RULES = """\
absence_recent [2]: absence_rate_3m >= 10%
mood [3]: low_mood and at least 1 of (single_parent_allowance, lunch_arrears_months >= 2)
"""


@pytest.fixture
def steward(make, as_principal):
    return as_principal(make.staff("data_steward")), as_principal(make.staff("data_steward"))


@pytest.fixture
def active(session, steward):
    author, approver = steward
    rs = service.draft_rule_set(session, author, "Test rules", RULES)
    service.submit_rule_set(session, author, rs.id)
    service.approve_rule_set(session, approver, rs.id)
    return rs


def _absent(records, child, per_month):
    for m, a in zip((5, 6, 7), per_month, strict=True):
        records.attendance(child, date(2026, m, 1), school_days=20, absent=a)


def test_indicators_from_linked_records_and_signals(session, make, consented, records):
    _, klass = make.teacher_with_class(grade=5)
    child = consented(klass)
    for m in (2, 3):
        records.attendance(child, date(2026, m, 1), absent=1)
    records.attendance(child, date(2026, 4, 1), absent=2)
    _absent(records, child, [3, 4, 5])
    records.record(child, "health", date(2026, 5, 10), check_status="受診", untreated_caries=4)
    records.record(child, "kyushoku", date(2026, 6, 30), months_in_arrears=3)
    records.record(child, "jidou_fuyou", date(2025, 8, 1), payment_class="一部支給")
    records.record(child, "seikatsu_hogo", date(2024, 8, 1), started_on="2024-08-01", ended_on="2025-01-31")
    records.signal(child, "low_mood_streak", days_ago=3)
    records.signal(child, "help_request", days_ago=40)  # too old for the 30-day window
    not_consented = make.child(klass)
    records.attendance(not_consented, date(2026, 7, 1), absent=10)

    t = indicators.compute(session, AS_OF)
    assert t.child_ids.tolist() == [child.id]
    row = t.row(0)
    assert row["absence_days_3m"] == 12
    assert row["absence_rate_3m"] == 0.2
    assert row["absence_days_year"] == 14  # since 1 April
    assert row["absence_30_days"] is False
    assert row["absence_rising"] is True  # 20 % vs (1+1+2)/60
    assert row["untreated_caries"] == 4 and row["health_check_missed"] is False
    assert row["lunch_arrears_months"] == 3
    assert row["single_parent_allowance"] is True
    assert row["public_assistance"] is False  # ended
    assert row["low_mood"] is True and row["help_request"] is False


def test_indicators_use_a_fixed_number_of_queries(session, make, consented, records):
    from sqlalchemy import event

    _, klass = make.teacher_with_class(grade=5)
    for _ in range(5):
        c = consented(klass)
        _absent(records, c, [1, 2, 3])
    statements = []

    def count(*a, **k):
        statements.append(1)

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", count)
    try:
        indicators.compute(session, AS_OF)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(statements) <= 8  # two gates + five grouped queries, whatever the number of children


def test_run_flags_with_facts_and_version(session, make, consented, records, active, as_principal):
    teacher, klass = make.teacher_with_class(grade=5)
    child = consented(klass)
    calm = consented(klass)
    _absent(records, child, [2, 3, 4])
    _absent(records, calm, [0, 1, 0])
    run = service.run_screening(session, SYSTEM, trigger="test", as_of=AS_OF)
    assert run.counts["new_flags"] == 1 and run.counts["children"] == 2
    [flag] = session.scalars(service.open_flags_query(as_principal(teacher))).all()
    assert flag.child_id == child.id and flag.rule_set_version_id == active.id
    assert flag.reasons == [
        {"indicator": "absence_rate_3m", "fact": 0.15, "params": {"op": ">=", "value": 0.1}, "rule": "absence_recent"}
    ]
    assert flag.needs_linkage and not flag.needs_survey
    assert service.describe_reasons(flag, "en") == [
        "Absent on 15% of school days in the last 3 months (threshold ≥ 10%)"
    ]


def test_same_child_same_reasons_not_flagged_twice(session, make, consented, records, active):
    _, klass = make.teacher_with_class(grade=5)
    child = consented(klass)
    _absent(records, child, [2, 3, 4])
    service.run_screening(session, SYSTEM, trigger="test", as_of=AS_OF)
    run2 = service.run_screening(session, SYSTEM, trigger="test", as_of=AS_OF)
    assert run2.counts["new_flags"] == 0 and run2.counts["still_open"] == 1
    assert session.scalar(select(func.count(Flag.id))) == 1


def test_decided_flag_not_raised_again_while_facts_hold(session, make, consented, records, active, as_principal):
    teacher, klass = make.teacher_with_class(grade=5)
    child = consented(klass)
    _absent(records, child, [2, 3, 4])
    service.run_screening(session, SYSTEM, trigger="test", as_of=AS_OF)
    flag = session.scalar(select(Flag))
    service.resolve_flag(session, as_principal(teacher), flag.id, "Known: hospital stay", outcome="not_needed")
    run = service.run_screening(session, SYSTEM, trigger="test", as_of=AS_OF)
    assert run.counts["new_flags"] == 0
    assert session.scalar(select(func.count(Flag.id))) == 1


def test_flag_resolves_when_facts_no_longer_hold_and_returns_as_new_episode(session, make, consented, records, active):
    _, klass = make.teacher_with_class(grade=5)
    child = consented(klass)
    _absent(records, child, [2, 3, 4])
    service.run_screening(session, SYSTEM, trigger="test", as_of=AS_OF)
    later = date(2026, 11, 15)  # the absent months are out of the window
    for m in (9, 10, 11):
        records.attendance(child, date(2026, m, 1), absent=0)
    run = service.run_screening(session, SYSTEM, trigger="test", as_of=later)
    assert run.counts["cleared"] == 1
    flag = session.scalar(select(Flag))
    assert flag.status == FlagStatus.resolved and flag.resolution == Resolution.facts_cleared
    records.attendance(child, date(2027, 1, 1), absent=8)
    service.run_screening(session, SYSTEM, trigger="test", as_of=date(2027, 1, 20))
    assert session.scalar(select(func.count(Flag.id)).where(Flag.status == FlagStatus.open)) == 1


def test_withdrawn_child_is_never_flagged_and_loses_its_flags(session, make, consented, records, active, as_principal):
    teacher, klass = make.teacher_with_class(grade=5)
    child = consented(klass)
    _absent(records, child, [2, 3, 4])
    records.signal(child, "low_mood_streak")
    records.record(child, "jidou_fuyou", date(2026, 4, 1), payment_class="全部支給")
    service.run_screening(session, SYSTEM, trigger="test", as_of=AS_OF)
    service.raise_manual_flag(session, as_principal(teacher), child.id, "worried")
    assert session.scalar(select(func.count(Flag.id))) == 3

    give_consent(session, child, "wellbeing_survey", withdraw=True)
    # the mood rule rests on check-ins: gone; attendance and the manual flag stay
    assert sorted(str(s) for s in session.scalars(select(Flag.source))) == ["manual", "rule"]
    assert session.scalar(select(func.count(Flag.id)).where(Flag.rule_code == "mood")) == 0

    give_consent(session, child, "data_linkage", withdraw=True)
    # the teacher's own concern is not consent-based: it stays, without the consented evidence
    (manual,) = session.scalars(select(Flag)).all()
    assert manual.source == "manual" and manual.features == {} and manual.model_score is None
    run = service.run_screening(session, SYSTEM, trigger="test", as_of=AS_OF)
    assert run.counts["children"] == 0 and run.counts["new_flags"] == 0


def test_flag_hidden_at_once_when_gate_closes(session, make, consented, records, active, as_principal):
    """Even before a purge (a purpose with a retention window), the queue follows the gate."""
    teacher, klass = make.teacher_with_class(grade=5)
    child = consented(klass)
    _absent(records, child, [2, 3, 4])
    service.run_screening(session, SYSTEM, trigger="test", as_of=AS_OF)
    from consent import hooks

    hooks.unregister_purger("data_linkage", service.purge_linkage)
    try:
        give_consent(session, child, "data_linkage", withdraw=True)
    finally:
        hooks.register_purger("data_linkage", service.purge_linkage)
    assert session.scalars(service.open_flags_query(as_principal(teacher))).all() == []


def test_run_without_active_rule_set_is_refused(session):
    with pytest.raises(ScreeningError, match="no active rule set"):
        service.run_screening(session, SYSTEM, trigger="test", as_of=AS_OF)


# -- four eyes ------------------------------------------------------------------------


def test_author_cannot_approve_own_rule_set(session, steward):
    author, _ = steward
    rs = service.draft_rule_set(session, author, "", RULES)
    service.submit_rule_set(session, author, rs.id)
    with pytest.raises(ScreeningError, match="cannot approve it"):
        service.approve_rule_set(session, author, rs.id)
    assert rs.status == RuleSetStatus.submitted


def test_approval_activates_and_retires_previous(session, steward, make, as_principal):
    author, approver = steward
    lead = as_principal(make.staff("school_lead"))
    v1 = service.draft_rule_set(session, author, "", RULES)
    service.submit_rule_set(session, author, v1.id)
    service.approve_rule_set(session, approver, v1.id)
    v2 = service.draft_rule_set(session, approver, "", "x: help_request")
    service.submit_rule_set(session, approver, v2.id)
    service.approve_rule_set(session, lead, v2.id)
    assert (v1.status, v2.status) == (RuleSetStatus.retired, RuleSetStatus.active)
    assert v2.version == 2 and service.active_rule_set(session).id == v2.id


def test_draft_cannot_be_approved_before_submission_and_teacher_cannot_edit(session, steward, make, as_principal):
    author, approver = steward
    rs = service.draft_rule_set(session, author, "", RULES)
    with pytest.raises(ScreeningError, match="Only a rule set sent for approval"):
        service.approve_rule_set(session, approver, rs.id)
    with pytest.raises(ScreeningError, match="may not do this"):
        service.draft_rule_set(session, as_principal(make.staff("teacher")), "", RULES)


def test_invalid_rules_refused_on_draft(session, steward):
    author, _ = steward
    with pytest.raises(ScreeningError, match="unknown indicator “nope”"):
        service.draft_rule_set(session, author, "", "a: nope")


def test_rejected_goes_back_to_author(session, steward):
    author, approver = steward
    rs = service.draft_rule_set(session, author, "", RULES)
    service.submit_rule_set(session, author, rs.id)
    with pytest.raises(ScreeningError, match="Say why"):
        service.reject_rule_set(session, approver, rs.id, " ")
    service.reject_rule_set(session, approver, rs.id, "Threshold too low")
    service.update_rule_set(session, author, rs.id, "", "a: absence_rate_3m >= 15%")
    assert rs.status == RuleSetStatus.draft and rs.rules[0]["when"]["value"] == 0.15
