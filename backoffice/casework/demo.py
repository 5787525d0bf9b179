"""Demo cases at every stage for the demo school, so the queue, register and dashboards have numbers.

Built through the same services the pages use, then a few dates are moved
into the past so the register shows days to decision and overdue tasks.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.auth.service import principal_for
from portal.orm import utcnow

NOTES = {
    "attendance_note": "月曜日の欠席が続いている（架空の記録）",
    "child_voice": "「朝、おなかが痛くなる」（架空）",
    "notes": "保護者と電話で話した（架空）",
}


def load(session: Session, ctx) -> None:
    from backoffice.casework import service as cw
    from backoffice.casework.models import Case, CaseSource, PlanAction
    from backoffice.screening.models import Flag, FlagStatus
    from portal.people.models import Enrolment, SchoolClass

    school = ctx.schools[0]
    lead = principal_for(ctx.staff["lead"])
    counsellor = principal_for(ctx.staff["counsellor"])
    ssw_id = ctx.staff["ssw"].id
    rng = ctx.rng
    today = cw.tokyo_today()

    # Children of the demo school: flagged ones first, then others (manual cases).
    rows = session.execute(
        select(Enrolment.child_id, SchoolClass.homeroom_teacher_id)
        .join(SchoolClass, SchoolClass.id == Enrolment.class_id)
        .where(SchoolClass.school_id == school.id)
        .order_by(SchoolClass.grade, Enrolment.attendance_no)
    ).all()
    teacher_of = {cid: tid for cid, tid in rows}
    flags = {f.child_id: f for f in session.scalars(
        select(Flag).where(Flag.status == FlagStatus.open, Flag.child_id.in_(teacher_of)).order_by(Flag.id))}
    order = list(flags) + [cid for cid, _ in rows if cid not in flags]
    stages = ["flagged", "flagged", "assessed", "assessed", "decided", "plan_active", "plan_active",
              "under_review", "closed", "closed"]
    meeting = cw.create_meeting(session, lead, school.id, today)
    cw.set_attendees(session, lead, meeting.id, [lead.id, counsellor.id, ssw_id], None)
    now = utcnow()
    for stage, child_id in zip(stages, order, strict=False):
        teacher = principal_for(session.get(type(ctx.staff["teacher"]), teacher_of[child_id]))
        flag = flags.get(child_id)
        if flag is not None and flag.status == FlagStatus.open:
            case = cw.open_from_flag(session, teacher, flag.id)
        else:
            case = cw.open_case(session, teacher, child_id, source=CaseSource.manual, urgency=2)
        case.flagged_at = now - timedelta(days=rng.randint(10, 40))
        session.flush()
        if stage == "flagged":
            case.assessment_due = today - timedelta(days=rng.randint(0, 3))  # one overdue assessment
            session.flush()
            continue
        cw.assess(session, teacher, case.id, case.version, cw.AssessmentData(
            proposal="no_concern" if stage == "closed" else "support_needed", attendance="some",
            relationships="some", no_concern_reason="一時的なもの（架空）" if stage == "closed" else None, **NOTES))
        if stage == "assessed":
            continue
        cw.list_case(session, lead, meeting.id, case.id)
        decision = "close" if stage == "closed" else "support_plan"
        cw.decide(session, lead, meeting.id, case.id, case.version, decision,
                  "校内委員会で確認（架空）" if decision == "close" else None)
        if stage in ("decided", "closed"):
            continue
        cw.save_plan(session, counsellor, case.id, case.version, cw.PlanData(
            review_date=today + timedelta(days=30), goals=["安心して登校できる（架空）"],
            actions=[cw.ActionData("家庭訪問（架空）", teacher.id, today + timedelta(days=7)),
                     cw.ActionData("面談（架空）", counsellor.id, today + timedelta(days=14))]))
        cw.refer(session, lead, case.id, "social_worker", receiver_id=ssw_id, reason="家庭の状況確認（架空）")
        if stage == "under_review":
            cw.start_review(session, lead, case.id, case.version)
    session.flush()
    # Some plan actions are overdue, so the dashboard shows it.
    act = session.scalar(select(PlanAction).order_by(PlanAction.id))
    if act is not None:
        act.due_on = today - timedelta(days=2)
    for case in session.scalars(select(Case).where(Case.decided_at.is_not(None))):
        case.decided_at = case.flagged_at + timedelta(days=rng.randint(5, 20))
    session.flush()
