"""Submitting answers: bad input refused clearly, one response per assignment, help alerts, signals."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event, func, select, text

from consent.testing import give_consent
from portal.auth.service import principal_for
from surveys import scheduling, service
from surveys.models import HelpAlert, SignalKind, SurveyAssignment, SurveyResponse, SurveySignal
from tests.surveys.conftest import MONDAY_0830, MOOD_OK

NOW = MONDAY_0830 + timedelta(minutes=5)


def _assignment(session, child):
    return session.scalar(select(SurveyAssignment).where(SurveyAssignment.child_id == child.id))


def test_submission_is_stored_once_even_when_sent_twice(session, sv):
    env = sv.setup()
    me = principal_for(env["child"])
    a = _assignment(session, env["child"])
    first = service.submit(session, me, a.id, MOOD_OK, NOW)
    second = service.submit(session, me, a.id, MOOD_OK, NOW)
    assert second.duplicate and second.response.id == first.response.id
    assert session.scalar(select(func.count()).select_from(SurveyResponse)) == 1


def test_unique_constraint_keeps_one_response_per_assignment(session, sv):
    from sqlalchemy.exc import IntegrityError

    env = sv.setup()
    a = _assignment(session, env["child"])
    service.submit(session, principal_for(env["child"]), a.id, MOOD_OK, NOW)
    with pytest.raises(IntegrityError), session.begin_nested():
        session.add(SurveyResponse(assignment_id=a.id, child_id=a.child_id, instrument_code="mood", instrument_version="1",
                                   respondent_kind="student", respondent_id=1, answers={}))
        session.flush()


def test_submission_after_the_window_is_refused(session, sv):
    env = sv.setup()
    a = _assignment(session, env["child"])
    with pytest.raises(service.AnswerError, match="じかんは おわりました"):
        service.submit(session, principal_for(env["child"]), a.id, MOOD_OK, MONDAY_0830 + timedelta(hours=2))
    assert session.scalar(select(func.count()).select_from(SurveyResponse)) == 0


def test_submission_for_another_childs_assignment_is_refused(session, sv, make):
    env = sv.setup()
    other = make.child(env["cls"])
    a = _assignment(session, env["child"])
    with pytest.raises(service.AnswerError, match="あなたの チェックインでは ありません"):
        service.submit(session, principal_for(other), a.id, MOOD_OK, NOW)
    assert session.scalar(select(func.count()).select_from(SurveyResponse)) == 0


@pytest.mark.parametrize("change", [{"weather": None}, {"weather": "7"}, {"sleep": "abc"}, {"talk": ["0", "1"]}])
def test_missing_or_out_of_range_answers_are_refused(session, sv, change):
    env = sv.setup()
    a = _assignment(session, env["child"])
    answers = {**MOOD_OK, **change}
    answers = {k: v for k, v in answers.items() if v is not None}
    with pytest.raises(service.AnswerError) as exc:
        service.submit(session, principal_for(env["child"]), a.id, answers, NOW)
    assert set(exc.value.errors) == set(change)
    assert session.scalar(select(func.count()).select_from(SurveyResponse)) == 0


def test_child_without_consent_gets_no_assignment_and_cannot_answer(session, sv):
    env = sv.setup(consent=False)
    assert _assignment(session, env["child"]) is None
    assert service.open_assignments(session, principal_for(env["child"]), NOW) == []


def test_withdrawal_hides_open_check_in_and_purges_answers_but_not_the_request_for_help(session, sv):
    env = sv.setup()
    child = env["child"]
    a = _assignment(session, child)
    service.submit(session, principal_for(child), a.id, {**MOOD_OK, "talk": "1"}, NOW)
    give_consent(session, child, "wellbeing_survey", withdraw=True)
    assert session.scalar(select(func.count()).select_from(SurveyResponse)) == 0
    assert session.scalar(select(func.count()).select_from(SurveySignal)) == 0
    alert = session.scalar(select(HelpAlert))
    assert alert is not None and alert.response_id is None  # kept, only unlinked from the deleted answers


def test_resume_keeps_half_done_answers(session, sv):
    env = sv.setup()
    me = principal_for(env["child"])
    a = _assignment(session, env["child"])
    service.save_progress(session, me, a.id, {"weather": "2", "sleep": "1"}, NOW)
    session.expire_all()
    assert service.progress_of(_assignment(session, env["child"])) == {"weather": 2, "sleep": 1}
    result = service.submit(session, me, a.id, {"breakfast": "3", "friends": "3", "worries": "0", "talk": "0"}, NOW)
    assert result.response.answers["weather"] == 2


def test_talk_request_alerts_teacher_and_counsellor_by_email(session, sv, outbox):
    env = sv.setup(grade=8)
    a = _assignment(session, env["child"])
    result = service.submit(session, principal_for(env["child"]), a.id, {**MOOD_OK, "talk": "1"}, NOW)
    assert result.alert is not None and SignalKind.help_request in result.signals
    assert sorted(m["To"] for m in outbox) == sorted([env["teacher"].email, env["counsellor"].email])
    assert env["child"].name not in outbox[0].get_content()  # no names in e-mail


def test_critical_answer_alerts_too(session, sv):
    env = sv.setup()
    a = _assignment(session, env["child"])
    result = service.submit(session, principal_for(env["child"]), a.id, {**MOOD_OK, "worries": "3"}, NOW)
    assert result.alert.reason == "critical_answer"


def test_unacknowledged_alert_escalates_to_the_school_lead_once(session, sv, outbox):
    env = sv.setup()
    alert = service.talk_request(session, principal_for(env["child"]), NOW)
    outbox.clear()
    assert service.escalate_due(session, NOW + timedelta(minutes=30), timedelta(minutes=60)) == 0
    assert service.escalate_due(session, NOW + timedelta(minutes=61), timedelta(minutes=60)) == 1
    assert [m["To"] for m in outbox] == [env["lead"].email]
    assert service.escalate_due(session, NOW + timedelta(minutes=120), timedelta(minutes=60)) == 0
    assert alert.escalated_at is not None


def test_acknowledging_needs_a_note_and_is_audited(session, sv):
    from portal.audit.models import AuditEvent

    env = sv.setup()
    alert = service.talk_request(session, principal_for(env["child"]), NOW)
    counsellor = principal_for(env["counsellor"])
    with pytest.raises(service.AnswerError, match="対応を記入"):
        service.acknowledge(session, counsellor, alert.id, " ", NOW)
    service.acknowledge(session, counsellor, alert.id, "Talked with the child at lunch.", NOW)
    with pytest.raises(service.AnswerError, match="すでに対応"):
        service.acknowledge(session, counsellor, alert.id, "again", NOW)
    assert session.scalar(select(AuditEvent.action).where(AuditEvent.action == "surveys.alert_acknowledged"))
    stranger_school = sv.make.school()
    stranger = principal_for(sv.make.staff("counsellor", schools=[stranger_school]))
    with pytest.raises(LookupError):
        service.acknowledge(session, stranger, alert.id, "not mine", NOW)


def test_low_mood_on_three_of_five_check_ins_is_a_signal(session, sv, make):
    env = sv.setup()
    child = env["child"]
    me = principal_for(child)
    day = MONDAY_0830
    kinds = []
    for weather in ["2", "4", "1", "2"]:
        scheduling.open_due(session, day)
        a = session.scalar(select(SurveyAssignment).where(SurveyAssignment.child_id == child.id, SurveyAssignment.status == "open"))
        kinds.append(service.submit(session, me, a.id, {**MOOD_OK, "weather": weather}, day + timedelta(minutes=1)).signals)
        day += timedelta(days=1)
    assert kinds == [[], [], [], [SignalKind.low_mood_streak]]
    rows = session.execute(service.signals_for_screening()).all()
    assert {r.kind for r in rows} == {SignalKind.low_mood_streak}


def test_who5_at_or_below_50_is_a_signal(session, sv):
    env = sv.setup(grade=8, instrument="who5")
    a = _assignment(session, env["child"])
    result = service.submit(session, principal_for(env["child"]), a.id, {"q1": "2", "q2": "2", "q3": "3", "q4": "3", "q5": "2"}, NOW)
    assert result.response.score == 48 and result.signals == [SignalKind.who5_poor]


def test_free_text_is_encrypted_at_rest(session, sv, db):
    env = sv.setup(grade=5)
    a = _assignment(session, env["child"])
    service.submit(session, principal_for(env["child"]), a.id, {**MOOD_OK, "note": "ひみつの話"}, NOW)
    session.flush()
    raw = session.execute(text("SELECT free_text FROM survey_response")).scalar_one()
    assert "ひみつ" not in raw


def _count_queries(session, fn):
    statements = []

    def before(conn, cursor, statement, *a):
        statements.append(statement)

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", before)
    try:
        fn()
    finally:
        event.remove(engine, "before_cursor_execute", before)
    return len(statements)


def test_submission_uses_a_constant_number_of_queries(session, sv, make):
    env = sv.setup()
    cls = env["cls"]
    for _ in range(5):
        sv.consented_child(cls)
    # a child with a long history and one with none answer with the same number of queries
    history = env["child"]
    day = MONDAY_0830
    for _ in range(4):  # Monday to Thursday; the measured answers are on Friday
        scheduling.open_due(session, day)
        a = session.scalar(select(SurveyAssignment).where(SurveyAssignment.child_id == history.id, SurveyAssignment.status == "open"))
        service.submit(session, principal_for(history), a.id, MOOD_OK, day + timedelta(minutes=1))
        day += timedelta(days=1)
    scheduling.open_due(session, day)
    fresh = sv.consented_child(cls)
    scheduling.open_due(session, day)
    session.commit()
    counts = []
    for child in (history, fresh):
        a = session.scalar(select(SurveyAssignment).where(SurveyAssignment.child_id == child.id, SurveyAssignment.status == "open"))
        me = principal_for(child)
        counts.append(_count_queries(session, lambda a=a, me=me: service.submit(session, me, a.id, {**MOOD_OK, "weather": "1"}, day + timedelta(minutes=1))))
    assert counts[0] == counts[1]
    assert counts[0] <= 6  # load, claim, answer, the recent-lows look-up, the signal


def test_talk_request_without_survey_consent_reaches_the_adults_but_stores_no_signal(session, sv, outbox):
    env = sv.setup(grade=8, consent=False)
    alert = service.talk_request(session, principal_for(env["child"]), NOW)
    assert alert.reason == "talk_request"
    assert sorted(m["To"] for m in outbox) == sorted([env["teacher"].email, env["counsellor"].email])
    assert session.scalar(select(func.count()).select_from(SurveySignal)) == 0


def test_escalation_waits_the_configured_time(app, session, sv, outbox):
    from surveys import jobs

    env = sv.setup()
    service.talk_request(session, principal_for(env["child"]), NOW)
    outbox.clear()
    app.config["SURVEYS_ALERT_ESCALATE_MINUTES"] = 15
    try:
        assert jobs.escalate(session, NOW + timedelta(minutes=14)) == 0
        assert jobs.escalate(session, NOW + timedelta(minutes=15)) == 1
    finally:
        app.config["SURVEYS_ALERT_ESCALATE_MINUTES"] = 60
    assert [m["To"] for m in outbox] == [env["lead"].email]
