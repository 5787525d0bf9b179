"""Tasks derived from due dates, and the daily reminder job.

Nothing is stored: a task is a row of one UNION query over the cases
(assessment due, review due), the plans' actions (action due) and the
referrals waiting for an answer. Every list is that one query, whatever
the number of cases.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Select, case, func, literal, select, union_all
from sqlalchemy.orm import Session

from backoffice.casework.models import (
    AWAITING_ASSESSMENT,
    OPEN_STATUSES,
    Case,
    CaseSource,
    CaseStatus,
    PlanAction,
    Referral,
    ReferralStatus,
)
from backoffice.casework.service import audit_reads, notify, tokyo_today, visible_case_ids
from portal.auth.access import visible_school_ids
from portal.auth.principal import Principal
from portal.people.models import Child, School, Staff

log = logging.getLogger(__name__)

KINDS = ("assessment_due", "review_due", "action_due", "referral_waiting")


def task_rows() -> Select:
    """SELECT of every open task: kind, case_id, child_id, school_id, owner_id, due_on, ref_id."""
    assessment = select(
        literal("assessment_due").label("kind"), Case.id.label("case_id"), Case.child_id, Case.school_id,
        Case.teacher_id.label("owner_id"), Case.assessment_due.label("due_on"), Case.id.label("ref_id"),
    ).where(Case.status.in_(AWAITING_ASSESSMENT), Case.assessment_due.is_not(None))
    review = select(
        literal("review_due"), Case.id, Case.child_id, Case.school_id, Case.teacher_id, Case.review_due, Case.id,
    ).where(Case.status.in_((CaseStatus.decided, CaseStatus.plan_active, CaseStatus.under_review)),
            Case.review_due.is_not(None))
    action = (
        select(literal("action_due"), Case.id, Case.child_id, Case.school_id, PlanAction.owner_id,
               PlanAction.due_on, PlanAction.id)
        .join(Case, Case.id == PlanAction.case_id)
        .where(PlanAction.done_at.is_(None), Case.status.in_(OPEN_STATUSES))
    )
    referral = (
        select(literal("referral_waiting"), Case.id, Case.child_id, Case.school_id,
               func.coalesce(Referral.receiver_id, Referral.created_by_id), Referral.answer_due, Referral.id)
        .join(Case, Case.id == Referral.case_id)
        .where(Referral.status == ReferralStatus.in_progress)
    )
    return union_all(assessment, review, action, referral)


@dataclass
class Task:
    kind: str
    case_id: int
    child_id: int
    child_name: str
    school_name: str
    owner_name: str | None
    owner_id: int | None
    due_on: date
    ref_id: int

    def overdue(self, today: date) -> bool:
        return self.due_on < today


def tasks_for(session: Session, principal: Principal, *, mine: bool, today: date | None = None,
              overdue_only: bool = False, limit: int = 1000) -> list[Task]:
    """This person's tasks (``mine``) or those of the schools they see; one query, and the
    audited reads of the children named."""
    today = today or tokyo_today()
    t = task_rows().subquery("t")
    q = (
        select(t, Child.name.label("child_name"), School.name.label("school_name"), Staff.name.label("owner_name"))
        .join(Child, Child.id == t.c.child_id)
        .join(School, School.id == t.c.school_id)
        .outerjoin(Staff, Staff.id == t.c.owner_id)
        .where(t.c.case_id.in_(visible_case_ids(principal)))
    )
    if mine:
        q = q.where(t.c.owner_id == principal.id)
    else:
        q = q.where(t.c.school_id.in_(visible_school_ids(principal)))
    if overdue_only:
        q = q.where(t.c.due_on < today)
    rows = session.execute(q.order_by(t.c.due_on, t.c.case_id).limit(limit)).all()
    out = [
        Task(r.kind, r.case_id, r.child_id, r.child_name, r.school_name, r.owner_name, r.owner_id, r.due_on, r.ref_id)
        for r in rows
    ]
    # The list names each child: one audited read per child shown.
    audit_reads(session, principal, [t.child_id for t in out], "casework.tasks" if mine else "casework.school_tasks")
    return out


def overdue_by_person(rows: list[Task]) -> list[tuple[str | None, int]]:
    """(owner's name, overdue tasks) for a school's overdue list, most overdue first."""
    counts: dict[tuple[int | None, str | None], int] = {}
    for t in rows:
        key = (t.owner_id, t.owner_name)
        counts[key] = counts.get(key, 0) + 1
    return [(name, n) for (_, name), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0][1] or ""))]


def overdue_counts_by_school(session: Session, today: date, school_ids: Select | None = None) -> dict[int, int]:
    t = task_rows().subquery("t")
    q = select(t.c.school_id, func.count()).where(t.c.due_on < today).group_by(t.c.school_id)
    if school_ids is not None:
        q = q.where(t.c.school_id.in_(school_ids))
    return {sid: n for sid, n in session.execute(q)}


def overdue_counts_by_case(today: date):
    """Subquery (case_id, overdue, next_due) for the register."""
    t = task_rows().subquery("t")
    return (
        select(
            t.c.case_id,
            func.sum(case((t.c.due_on < today, 1), else_=0)).label("overdue"),
            func.min(t.c.due_on).label("next_due"),
        )
        .group_by(t.c.case_id)
        .subquery("case_tasks")
    )


# -- reminders ---------------------------------------------------------------------------


def send_reminders(session: Session, now: datetime) -> dict[str, int]:
    """Tell each person once a day how many of their tasks are due today or overdue.

    The notice holds counts only; the person opens their task list for the rest.
    One query for the counts, one insert per person reminded.
    """
    today = tokyo_today(now)
    t = task_rows().subquery("t")
    rows = session.execute(
        select(
            t.c.owner_id,
            func.sum(case((t.c.due_on < today, 1), else_=0)).label("overdue"),
            func.sum(case((t.c.due_on == today, 1), else_=0)).label("today"),
        )
        .where(t.c.owner_id.is_not(None), t.c.due_on <= today)
        .group_by(t.c.owner_id)
    ).all()
    people = {st.id: st for st in session.scalars(select(Staff).where(Staff.id.in_([r[0] for r in rows])))} if rows else {}
    sent = 0
    for owner_id, overdue, due_today in rows:
        person = people.get(owner_id)
        if person is None or not person.active:
            continue
        before = set(session.new)
        counts = {"overdue": int(overdue or 0), "today": int(due_today or 0)}
        notify(session, owner_id, "tasks_due", None, counts, dedupe_key=f"tasks:{today.isoformat()}")
        if set(session.new) - before:
            sent += 1
            _mail_reminder(person, counts)
    session.flush()
    log.info("casework reminders: %d people", sent)
    return {"reminded": sent}


def _mail_reminder(person: Staff, counts: dict[str, int]) -> None:
    """A short e-mail with counts only: no child is named outside the application."""
    from flask_babel import force_locale
    from flask_babel import gettext as _

    from portal import mail

    with force_locale(person.locale or "ja"):
        subject = _("Mimamori: casework tasks due")
        body = _("Tasks due today: %(today)s; overdue: %(overdue)s.", **counts) + "\n\n" + _(
            "Sign in to Mimamori and open Tasks to see them.")
    try:
        mail.send(mail.build_message(person.email, subject, body))
    except mail.MailError:
        log.warning("casework reminder mail not delivered")


def open_cases_for_new_flags(session: Session, now: datetime) -> int:
    """Open a case for every open flag that has none (so its assessment becomes a task)."""
    from backoffice.casework import flags
    from backoffice.casework.service import open_case
    from backoffice.screening.models import Flag
    from portal.auth.principal import SYSTEM

    has_case = select(Case.id).where(Case.flag_id == Flag.id).exists()
    open_child = select(Case.id).where(Case.child_id == Flag.child_id, Case.status.in_(OPEN_STATUSES)).exists()
    new = session.scalars(
        flags.open_flags(SYSTEM).where(~has_case, ~open_child).order_by(None).order_by(Flag.id).limit(5000)
    ).all()
    n = 0
    for flag in new:
        linkage, survey = flags.purposes_of(flag)
        try:
            open_case(session, SYSTEM, flag.child_id, flag_id=flag.id, source=CaseSource.flag, urgency=flag.urgency or 0,
                      flagged_at=flag.created_at, uses_linkage=linkage, uses_survey=survey)
            n += 1
        except ValueError:  # the child has no class this year
            continue
    return n


def daily(session: Session, now: datetime) -> None:
    """The scheduler's daily job: open cases for new flags, then remind people of due tasks."""
    open_cases_for_new_flags(session, now)
    send_reminders(session, now)
