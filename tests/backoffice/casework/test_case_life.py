"""Case life through the services: the whole path, and every refusal the issue names."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, text

from backoffice.casework import service as cw
from backoffice.casework.models import (
    Assessment,
    Case,
    CaseEvent,
    CaseStatus,
    Notice,
    Referral,
    ReferralStatus,
)
from backoffice.screening.models import FlagStatus, Outcome
from consent.testing import give_consent
from portal.audit.models import AuditEvent
from tests.backoffice.casework.conftest import future


def _en(err) -> str:
    from flask_babel import force_locale

    with force_locale("en"):
        return str(err.message)


def _assess(session, world, case, proposal="support_needed", **kw):
    data = cw.AssessmentData(proposal=proposal, attendance="serious", attendance_note="欠席が続いている",
                             child_voice="朝起きられない", **kw)
    return cw.assess(session, world.p(world.teacher), case.id, case.version, data)


def _decided_case(session, world, flagged, decision="support_plan", **kw):
    child, flag = flagged(world.cls)
    case = cw.open_from_flag(session, world.p(world.teacher), flag.id)
    _assess(session, world, case)
    m = cw.create_meeting(session, world.p(world.lead), world.school.id, future(0))
    cw.list_case(session, world.p(world.lead), m.id, case.id)
    cw.decide(session, world.p(world.lead), m.id, case.id, case.version, decision, **kw)
    return child, flag, case, m


def test_whole_path_from_flag_to_closure_and_reopening(session, world, flagged):
    child, flag = flagged(world.cls)
    teacher, lead, counsellor = world.p(world.teacher), world.p(world.lead), world.p(world.counsellor)

    case = cw.open_from_flag(session, teacher, flag.id)
    assert case.status == CaseStatus.flagged and case.teacher_id == world.teacher.id
    assert case.uses_linkage and not case.uses_survey
    assert cw.open_from_flag(session, teacher, flag.id).id == case.id  # idempotent

    _assess(session, world, case)
    assert case.status == CaseStatus.assessed

    m = cw.create_meeting(session, lead, world.school.id, future(0))
    cw.set_attendees(session, lead, m.id, [world.lead.id, world.teacher.id, world.counsellor.id], "PTA会長")
    cw.list_case(session, lead, m.id, case.id)
    cw.decide(session, lead, m.id, case.id, case.version, "support_plan", "支援が必要")
    assert case.status == CaseStatus.decided and case.decided_at is not None
    session.refresh(flag)
    assert flag.status == FlagStatus.resolved and flag.outcome == Outcome.confirmed
    notice = session.scalar(select(Notice).where(Notice.staff_id == world.teacher.id))
    assert notice.kind == "decision" and notice.params == {"decision": "support_plan"}

    plan = cw.save_plan(session, counsellor, case.id, case.version, cw.PlanData(
        review_date=future(60), goals=["毎日登校する"],
        actions=[cw.ActionData("家庭訪問", world.teacher.id, future(7))]))
    assert case.status == CaseStatus.plan_active and case.review_due == future(60)
    assert [g.text for g in plan.goals] == ["毎日登校する"]

    r = cw.refer(session, lead, case.id, "counsellor", receiver_id=world.counsellor.id, reason="面談をお願いします")
    assert r.status == ReferralStatus.in_progress and not r.external
    cw.respond(session, counsellor, r.id, accept=True)
    assert r.status == ReferralStatus.accepted
    cw.finish_referral(session, counsellor, r.id)
    assert r.status == ReferralStatus.done

    cw.complete_action(session, teacher, plan.actions[0].id)
    cw.start_review(session, lead, case.id, case.version)
    assert case.status == CaseStatus.under_review
    cw.continue_after_review(session, lead, case.id, case.version, future(90))
    assert case.status == CaseStatus.plan_active and case.review_due == future(90)
    cw.start_review(session, lead, case.id, case.version)
    cw.close_case(session, lead, case.id, case.version, "support_complete", "改善した")
    assert case.status == CaseStatus.closed and case.close_reason.value == "support_complete"

    cw.reopen_case(session, lead, case.id, case.version)
    assert case.status == CaseStatus.reopened and case.closed_at is None

    actions = [e.action for e in cw.history(session, case.id)]
    assert actions == [
        "opened", "assessed", "listed", "decided", "plan_made", "referred", "referral_accepted", "referral_done",
        "action_done", "review_started", "review_continued", "review_started", "closed", "reopened",
    ]
    # Every step is audited too (ids and codes only).
    audited = session.scalars(select(AuditEvent.action).where(AuditEvent.action.like("casework.%"))).all()
    assert "casework.decided" in audited and "casework.closed" in audited


def test_notes_are_encrypted_at_rest(session, world, flagged):
    child, flag = flagged(world.cls)
    case = cw.open_from_flag(session, world.p(world.teacher), flag.id)
    _assess(session, world, case)
    raw = session.execute(text("SELECT attendance_note, child_voice FROM casework_assessment")).one()
    assert "欠席" not in raw[0] and "朝起き" not in raw[1]
    assert cw.latest_assessment(session, case.id).child_voice == "朝起きられない"


def test_reading_a_case_is_audited(session, world, flagged):
    child, flag = flagged(world.cls)
    case = cw.open_from_flag(session, world.p(world.teacher), flag.id)
    cw.read_case(session, world.p(world.lead), case.id)
    ev = session.scalars(select(AuditEvent).where(AuditEvent.action == "child.read")).all()[-1]
    assert ev.child_id == child.id and ev.actor_id == world.lead.id and ev.detail == {"view": "casework.case"}


# -- bad input: a clear message, nothing changed ------------------------------------------


def test_assessment_for_a_child_outside_the_teachers_classes_is_refused(session, world, flagged):
    child, flag = flagged(world.other_cls)
    case = cw.open_from_flag(session, world.p(world.other_teacher), flag.id)
    with pytest.raises(cw.NotFound):
        cw.open_from_flag(session, world.p(world.teacher), flag.id)
    with pytest.raises(cw.NotFound):
        _assess(session, world, case)
    assert case.status == CaseStatus.flagged
    assert cw.latest_assessment(session, case.id) is None


def test_referral_outside_the_school_needs_share_with_partners_consent(session, world, flagged):
    child, flag, case, _ = _decided_case(session, world, flagged)
    lead = world.p(world.lead)
    with pytest.raises(cw.ConsentRefused) as err:
        cw.refer(session, lead, case.id, "family_support_centre", reason="家庭支援")
    assert "share_with_partners" in _en(err.value)
    assert session.scalar(select(Referral.id)) is None
    refused = session.scalar(select(AuditEvent).where(AuditEvent.action == "casework.referral_refused"))
    assert refused.detail["reason"] == "no_consent"

    give_consent(session, child, "share_with_partners")
    r = cw.refer(session, lead, case.id, "family_support_centre")
    assert r.external and r.status == ReferralStatus.in_progress
    # The centre has no account: the school lead records its answer; a rejection needs a reason.
    with pytest.raises(cw.CaseworkError):
        cw.respond(session, lead, r.id, accept=False)
    cw.respond(session, lead, r.id, accept=False, note="対象外")
    assert r.status == ReferralStatus.rejected


def test_referral_to_a_counsellor_of_another_school_is_refused(session, make, world, flagged):
    child, flag, case, _ = _decided_case(session, world, flagged)
    stranger = make.staff("counsellor", schools=[make.school()])
    with pytest.raises(cw.CaseworkError) as err:
        cw.refer(session, world.p(world.lead), case.id, "counsellor", receiver_id=stranger.id)
    assert err.value.field == "receiver_id"
    with pytest.raises(cw.NotFound):
        cw.read_case(session, world.p(stranger), case.id)


def test_only_the_receiver_answers_a_referral(session, world, flagged):
    child, flag, case, _ = _decided_case(session, world, flagged)
    r = cw.refer(session, world.p(world.lead), case.id, "social_worker", receiver_id=world.ssw.id)
    with pytest.raises(cw.NotFound):
        cw.respond(session, world.p(world.counsellor), r.id, accept=True)
    cw.respond(session, world.p(world.ssw), r.id, accept=True)
    with pytest.raises(cw.CaseworkError):
        cw.respond(session, world.p(world.ssw), r.id, accept=True)


def test_decision_on_a_closed_case_is_refused(session, world, flagged):
    child, flag, case, m = _decided_case(session, world, flagged, decision="close", note="問題なし")
    assert case.status == CaseStatus.closed
    session.refresh(flag)
    assert flag.outcome == Outcome.not_needed
    before = case.version
    with pytest.raises(cw.CaseworkError) as err:
        cw.decide(session, world.p(world.lead), m.id, case.id, case.version, "support_plan")
    assert "closed" in _en(err.value)
    assert case.version == before and case.status == CaseStatus.closed


def test_a_stale_form_is_a_conflict_not_a_lost_update(session, world, flagged):
    child, flag = flagged(world.cls)
    case = cw.open_from_flag(session, world.p(world.teacher), flag.id)
    stale = case.version
    _assess(session, world, case)
    with pytest.raises(cw.Conflict) as err:
        cw.assess(session, world.p(world.lead), case.id, stale, cw.AssessmentData(proposal="keep_watching",
                                                                                   review_date=future()))
    assert "Somebody else" in _en(err.value)
    assert cw.latest_assessment(session, case.id).proposal.value == "support_needed"


def test_the_version_column_guards_the_race_between_check_and_write(app, session, world, flagged):
    """Two sessions read version 1; the second write fails instead of overwriting."""
    from sqlalchemy.orm import Session

    child, flag = flagged(world.cls)
    case = cw.open_from_flag(session, world.p(world.teacher), flag.id)
    session.commit()
    from portal.extensions import db

    other = Session(db.engine)
    try:
        mine = other.get(Case, case.id)
        case.urgency = 3
        session.commit()
        mine.urgency = 1
        with pytest.raises(cw.Conflict):
            cw._flush(other)
    finally:
        other.rollback()
        other.close()


def test_due_dates_in_the_past_are_refused(session, world, flagged, today):
    child, flag, case, m = _decided_case(session, world, flagged)
    counsellor = world.p(world.counsellor)
    with pytest.raises(cw.CaseworkError) as err:
        cw.save_plan(session, counsellor, case.id, case.version, cw.PlanData(
            review_date=future(30), goals=["g"], actions=[cw.ActionData("a", world.teacher.id, today - timedelta(days=1))]))
    assert "past" in _en(err.value) and err.value.field == "actions"
    with pytest.raises(cw.CaseworkError) as err:
        cw.save_plan(session, counsellor, case.id, case.version, cw.PlanData(
            review_date=today - timedelta(days=2), goals=["g"], actions=[cw.ActionData("a", world.teacher.id, future())]))
    assert err.value.field == "review_date"
    assert cw.get_plan(session, case.id) is None and case.status == CaseStatus.decided

    child2, flag2 = flagged(world.cls)
    case2 = cw.open_from_flag(session, world.p(world.teacher), flag2.id)
    with pytest.raises(cw.CaseworkError) as err:
        _assess(session, world, case2, proposal="keep_watching", review_date=today - timedelta(days=1))
    assert err.value.field == "review_date"
    assert case2.status == CaseStatus.flagged


def test_no_concern_needs_a_reason_and_is_recorded_as_an_override(session, world, flagged):
    child, flag = flagged(world.cls)
    case = cw.open_from_flag(session, world.p(world.teacher), flag.id)
    with pytest.raises(cw.CaseworkError) as err:
        _assess(session, world, case, proposal="no_concern")
    assert err.value.field == "no_concern_reason"
    _assess(session, world, case, proposal="no_concern", no_concern_reason="家庭の事情で一時的")
    actions = [e.action for e in cw.history(session, case.id)]
    assert actions[-1] == "flag_override"


def test_plan_owner_must_work_for_the_school(session, make, world, flagged):
    child, flag, case, m = _decided_case(session, world, flagged)
    outsider = make.staff("teacher", schools=[make.school()])
    with pytest.raises(cw.CaseworkError) as err:
        cw.save_plan(session, world.p(world.lead), case.id, case.version, cw.PlanData(
            review_date=future(), goals=["g"], actions=[cw.ActionData("a", outsider.id, future())]))
    assert err.value.field == "actions"


def test_a_teacher_cannot_decide_or_close(session, world, flagged):
    child, flag, case, m = _decided_case(session, world, flagged)
    with pytest.raises(cw.NotFound):
        cw.get_meeting(session, world.p(world.teacher), m.id)
    with pytest.raises(cw.NotFound):
        cw.close_case(session, world.p(world.teacher), case.id, case.version, "no_concern")


# -- consent withdrawal --------------------------------------------------------------------------


def test_withdrawing_consent_closes_tied_cases_and_tells_the_teacher_only_that(session, world, flagged):
    child, flag, case, m = _decided_case(session, world, flagged)
    r = cw.refer(session, world.p(world.lead), case.id, "counsellor", receiver_id=world.counsellor.id)
    other_child, other_flag = flagged(world.cls, needs_linkage=False, needs_survey=True)
    other = cw.open_from_flag(session, world.p(world.teacher), other_flag.id)
    case_id, version = case.id, case.version

    give_consent(session, child, "data_linkage", withdraw=True)

    closed = session.get(Case, case_id)
    assert closed.status == CaseStatus.closed and closed.close_reason.value == "consent_withdrawn"
    assert closed.version == version + 1
    assert session.get(Referral, r.id).status == ReferralStatus.revoked
    assert session.get(Case, other.id).status == CaseStatus.flagged  # rests on check-ins, not linkage
    notice = session.scalars(select(Notice).where(Notice.staff_id == world.teacher.id, Notice.kind == "consent_withdrawn")).one()
    assert notice.params == {}
    last = session.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id.desc())).first()
    assert last.action == "closed" and last.detail == {"reason": "consent_withdrawn"}
    with pytest.raises(cw.CaseworkError):
        cw.reopen_case(session, world.p(world.lead), case_id, closed.version)


def test_cases_from_help_requests_stay_open_when_check_in_consent_is_withdrawn(session, make, world):
    from surveys.models import AlertReason, HelpAlert

    child = make.child(world.cls)
    make.guardian(child)
    give_consent(session, child, "wellbeing_survey")
    alert = HelpAlert(child_id=child.id, school_id=world.school.id, class_id=world.cls.id,
                      reason=AlertReason.talk_request)
    session.add(alert)
    session.flush()
    case = cw.open_from_alert(session, world.p(world.teacher), alert.id)
    # a request for help is not consent-based: the case rests on no consented data
    assert not case.uses_survey and case.urgency == 3
    give_consent(session, child, "wellbeing_survey", withdraw=True)
    session.expire_all()
    assert session.get(Case, case.id).status == CaseStatus.flagged
    assert session.get(HelpAlert, alert.id) is not None


def test_a_case_a_teacher_opened_stays_open_when_consent_is_withdrawn(session, world, flagged):
    """A teacher's own concern is not consent-based, even after a flag joined the case."""
    child, flag = flagged(world.cls)
    case = cw.open_case(session, world.p(world.teacher), child.id)
    assert cw.open_from_flag(session, world.p(world.teacher), flag.id).id == case.id  # the flag joins it
    give_consent(session, child, "data_linkage", withdraw=True)
    session.expire_all()
    assert session.get(Case, case.id).status == CaseStatus.flagged


def test_a_flag_case_that_carries_a_request_for_help_stays_open_when_consent_is_withdrawn(session, world, flagged):
    from surveys.models import AlertReason, HelpAlert

    child, flag = flagged(world.cls)
    case = cw.open_from_flag(session, world.p(world.teacher), flag.id)
    alert = HelpAlert(child_id=child.id, school_id=world.school.id, class_id=world.cls.id, reason=AlertReason.talk_request)
    session.add(alert)
    session.flush()
    assert cw.open_from_alert(session, world.p(world.teacher), alert.id).id == case.id
    give_consent(session, child, "data_linkage", withdraw=True)
    session.expire_all()
    assert session.get(Case, case.id).status == CaseStatus.flagged


def test_disclosure_rows_hold_no_names_or_notes(session, world, flagged):
    child, flag, case, m = _decided_case(session, world, flagged)
    rows = cw.disclosure_rows(session, child.id)
    assert rows[0]["status"] == "decided" and set(rows[0]) == {
        "case", "status", "source", "opened", "decided", "closed", "close_reason"}


def test_disclosure_carries_the_assessments_without_names_or_note_text(session, world, flagged):
    child, flag, case, m = _decided_case(session, world, flagged)
    (row,) = cw.disclosure_assessments(session, child.id)
    assert row["case"] == 1 and row["proposal"] in {"support_needed", "keep_watching", "no_concern"}
    assert {"attendance", "learning", "health", "relationships", "family_contact"} <= set(row)
    text = repr({k: v for k, v in row.items() if not k.startswith("_")})  # what the family gets
    for staff in (world.teacher, world.lead):
        assert staff.name not in text and staff.email not in text
    a = session.scalars(select(Assessment).where(Assessment.child_id == child.id)).one()
    for note in [a.notes, a.child_voice, *(getattr(a, f"{d}_note") for d in cw.DOMAINS)]:
        if note:
            assert note not in text
    # nothing in the row tells the family whether notes exist; the steward can release them
    assert not any("note" in k for k in row if not k.startswith("_"))
    from consent.hooks import RELEASED_VALUES

    assert ("notes" in row.get(RELEASED_VALUES, {}).get("notes", {})) == bool(a.notes)


def test_a_second_decision_needs_a_review_first(session, world, flagged):
    child, flag, case, m = _decided_case(session, world, flagged)
    lead = world.p(world.lead)
    with pytest.raises(cw.CaseworkError) as err:
        cw.decide(session, lead, m.id, case.id, case.version, "close", "x")
    assert "already recorded" in _en(err.value)
    m2 = cw.create_meeting(session, lead, world.school.id, future(7))
    cw.list_case(session, lead, m2.id, case.id)
    with pytest.raises(cw.CaseworkError) as err:
        cw.decide(session, lead, m2.id, case.id, case.version, "close", "x")
    assert "Start its review" in _en(err.value)
    cw.start_review(session, lead, case.id, case.version)
    cw.decide(session, lead, m2.id, case.id, case.version, "keep_watching", review_date=future(20))
    assert case.status == CaseStatus.decided and case.review_due == future(20)


def test_referral_to_a_catalogue_service(session, world, flagged):
    from resources.models import Service, ServiceStatus

    child, flag, case, _ = _decided_case(session, world, flagged)
    draft = Service(name_ja="下書きの教室", status=ServiceStatus.draft)
    published = Service(name_ja="子ども食堂ひだまり", status=ServiceStatus.published)
    session.add_all([draft, published])
    session.flush()
    lead = world.p(world.lead)
    give_consent(session, child, "share_with_partners")
    with pytest.raises(cw.CaseworkError) as err:
        cw.refer(session, lead, case.id, "resource", service_id=draft.id)
    assert err.value.field == "service_id"
    r = cw.refer(session, lead, case.id, "resource", service_id=published.id)
    assert r.external and r.service_id == published.id and r.receiver_id is None
    cw.respond(session, lead, r.id, accept=True, note="来週から参加")
    cw.finish_referral(session, lead, r.id)
    assert r.status == ReferralStatus.done


def test_past_review_dates_in_decisions_and_reviews_are_refused(session, world, flagged, today):
    child, flag = flagged(world.cls)
    lead = world.p(world.lead)
    case = cw.open_from_flag(session, world.p(world.teacher), flag.id)
    m = cw.create_meeting(session, lead, world.school.id, today)
    cw.list_case(session, lead, m.id, case.id)
    yesterday = today - timedelta(days=1)
    with pytest.raises(cw.CaseworkError) as err:
        cw.decide(session, lead, m.id, case.id, case.version, "keep_watching", review_date=yesterday)
    assert err.value.field == "review_date" and "past" in _en(err.value)
    assert case.status == CaseStatus.flagged and case.decision is None and m.items[0].decision is None

    cw.decide(session, lead, m.id, case.id, case.version, "keep_watching", review_date=future(10))
    cw.start_review(session, lead, case.id, case.version)
    with pytest.raises(cw.CaseworkError) as err:
        cw.continue_after_review(session, lead, case.id, case.version, yesterday)
    assert err.value.field == "review_date"
    assert case.status == CaseStatus.under_review and case.review_due == future(10)

    with pytest.raises(cw.CaseworkError) as err:
        cw.create_meeting(session, lead, world.school.id, today - timedelta(days=40))
    assert err.value.field == "held_on"


def test_every_free_text_about_a_child_is_encrypted_at_rest(session, world, flagged):
    child, flag, case, m = _decided_case(session, world, flagged, note="委員会の判断メモ")
    lead = world.p(world.lead)
    cw.set_attendees(session, lead, m.id, [world.lead.id], "民生委員の山田さん")
    cw.save_plan(session, lead, case.id, case.version, cw.PlanData(
        review_date=future(30), goals=["安心して登校する"], actions=[cw.ActionData("週一回の面談", world.teacher.id, future(7))]))
    cw.refer(session, lead, case.id, "counsellor", receiver_id=world.counsellor.id, reason="不安が強い様子")
    cw.start_review(session, lead, case.id, case.version)
    cw.close_case(session, lead, case.id, case.version, "other", "転居予定のため")
    session.flush()
    for table, column, words in [
        ("casework_meeting_item", "decision_note", "委員会の判断"), ("casework_meeting", "other_attendees", "民生委員"),
        ("casework_plan_goal", "text", "安心して"), ("casework_plan_action", "text", "週一回"),
        ("casework_referral", "reason", "不安が"), ("casework_case", "close_note", "転居"),
    ]:
        raw = session.execute(text(f"SELECT {column} FROM {table}")).scalars().all()  # noqa: S608 (fixed names)
        assert raw and all(v and words not in v for v in raw), (table, column)
