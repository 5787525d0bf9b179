"""Case life: opening, assessment, the school's decision, plans, referrals, reviews, closure.

Plain functions taking a session and the acting :class:`Principal`; they
flush, never commit. Every change is written to the case's history
(:class:`CaseEvent`) and audited; every read of a case is audited as a read of
the child's record. A form carries the case's ``version``: when somebody
else saved the case in between, :class:`Conflict` is raised and nothing is
changed (the version column also guards the race between check and write).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, and_, exists, func, insert, literal, or_, select, update
from sqlalchemy.orm import Session, joinedload, selectinload
from sqlalchemy.orm.exc import StaleDataError

from backoffice.casework.models import (
    AWAITING_ASSESSMENT,
    DOMAINS,
    EXTERNAL_TARGETS,
    OPEN_REFERRAL,
    OPEN_STATUSES,
    Assessment,
    Case,
    CaseEvent,
    CaseSource,
    CaseStatus,
    CloseReason,
    Concern,
    Decision,
    Meeting,
    MeetingAttendee,
    MeetingItem,
    MeetingStatus,
    Notice,
    PlanAction,
    PlanGoal,
    Proposal,
    Referral,
    ReferralStatus,
    ReferralTarget,
    SupportPlan,
)
from portal import once
from portal.audit import service as audit
from portal.auth.access import (
    can_see_child,
    current_year_id_subquery,
    visible_child_ids,
    visible_school_ids,
)
from portal.auth.principal import Principal
from portal.i18n import TOKYO
from portal.orm import utcnow
from portal.people.models import Child, Enrolment, Role, SchoolClass, Staff, StaffScope

PURPOSE = "casework"  # the audit purpose of reads
SHARE_PURPOSE = "share_with_partners"
ASSESSMENT_DAYS = 14  # a flag should be assessed within two weeks
REFERRAL_ANSWER_DAYS = 7  # a receiver should answer a referral within a week
MAX_TEXT = 4000


class CaseworkError(ValueError):
    """Bad input or a step not allowed now: a message for the user, nothing changed."""

    def __init__(self, message, field: str | None = None):
        super().__init__(str(message))
        self.message = message
        self.field = field


class Conflict(CaseworkError):
    """Somebody else changed the case since the form was opened."""

    def __init__(self):
        super().__init__(
            _l("Somebody else changed this case while you were editing it. Nothing was saved: "
               "the page now shows the latest version; check it and enter your change again.")
        )


class ConsentRefused(CaseworkError):
    """A referral outside the school without the family's consent (the refusal itself is audited)."""


class NotFound(LookupError):
    """No such record, or not one this person may see (the page answers 404)."""


def tokyo_today(now: datetime | None = None) -> date:
    return (now or utcnow()).astimezone(TOKYO).date()


# -- scope -----------------------------------------------------------------------


def visible_case_ids(principal: Principal) -> Select:
    """A SELECT of the case ids this person may see.

    Teachers: their classes' children; school leads: their schools;
    counsellors and school social workers: their assigned schools and every
    case referred to them. Nobody else sees individual cases.
    """
    if principal.role not in (Role.teacher, Role.school_lead, Role.counsellor, Role.social_worker):
        return select(Case.id).where(literal(False))
    q = select(Case.id).where(Case.child_id.in_(visible_child_ids(principal)))
    if principal.role in (Role.counsellor, Role.social_worker):
        q = select(Case.id).where(
            or_(
                Case.child_id.in_(visible_child_ids(principal)),
                Case.id.in_(select(Referral.case_id).where(Referral.receiver_id == principal.id)),
            )
        )
    return q


def _case(session: Session, principal: Principal, case_id: int, *, for_update: bool = False) -> Case:
    """A case this person may see. ``for_update``: a step that changes it holds the case's row lock
    first and reads the case as it is now, so two people deciding at once are one after the other
    (the second is told the case changed, :class:`Conflict`, or that the step is done already)."""
    q = select(Case).where(Case.id == case_id, Case.id.in_(visible_case_ids(principal))).options(
        joinedload(Case.child), joinedload(Case.school), joinedload(Case.teacher))
    if for_update:
        once.lock(session, Case, case_id)
        q = q.execution_options(populate_existing=True)
    case = session.scalar(q)
    if case is None:
        raise NotFound(case_id)
    return case


def _lead_case(session: Session, principal: Principal, case_id: int, *, for_update: bool = False) -> Case:
    """A case of one of this school lead's schools."""
    case = _case(session, principal, case_id, for_update=for_update)
    if principal.role != Role.school_lead or not _in_school(session, principal, case.school_id):
        raise NotFound(case_id)
    return case


def _in_school(session: Session, principal: Principal, school_id: int) -> bool:
    q = visible_school_ids(principal).subquery()
    return session.scalar(select(literal(1)).select_from(q).where(q.c[0] == school_id).limit(1)) is not None


def read_case(session: Session, principal: Principal, case_id: int, what: str = "casework.case") -> Case:
    """A case for display; the read is audited as a read of the child's record."""
    case = _case(session, principal, case_id)
    audit.record_child_read(session, principal, case.child_id, what, purpose=PURPOSE)
    return case


def audit_reads(session: Session, actor: Principal, child_ids, what: str) -> None:
    """One audited read per child (a meeting's cases, its PDF, the queue, the register)."""
    from portal.audit.service import record_child_reads

    record_child_reads(session, actor, child_ids, what, purpose=PURPOSE)


def _check_version(case: Case, expected: int | None) -> None:
    if expected is None or int(expected) != case.version:
        raise Conflict()


def _flush(session: Session) -> None:
    try:
        session.flush()
    except StaleDataError as exc:  # saved by someone else between our read and write
        raise Conflict() from exc


def _event(session: Session, actor: Principal, case: Case, action: str, *, old=None, detail: dict | None = None) -> None:
    session.add(
        CaseEvent(
            case_id=case.id,
            child_id=case.child_id,
            at=utcnow(),
            actor_staff_id=actor.id if actor.kind == "staff" else None,
            actor_role=actor.role,
            action=action,
            from_status=getattr(old, "value", old),
            to_status=case.status.value if old is not None else None,
            detail=detail or {},
        )
    )
    audit.record(session, actor, f"casework.{action}", child_id=case.child_id, purpose=PURPOSE,
                 detail={"case_id": case.id, **(detail or {})})


def _move(session: Session, actor: Principal, case: Case, to: CaseStatus, action: str, detail: dict | None = None) -> None:
    old = case.status
    case.status = to
    _event(session, actor, case, action, old=old, detail=detail)


def _text(value: str | None, name: str, *, required: bool = False) -> str | None:
    value = (value or "").strip()
    if required and not value:
        raise CaseworkError(_l("Please fill in this field."), name)
    if len(value) > MAX_TEXT:
        raise CaseworkError(_l("Please keep this under %(n)s characters.", n=MAX_TEXT), name)
    return value or None


def _future_date(value: date | None, today: date, name: str, *, required: bool = True) -> date | None:
    if value is None:
        if required:
            raise CaseworkError(_l("Please give a date."), name)
        return None
    if value < today:
        raise CaseworkError(_l("This date is in the past. Please choose today or a later date."), name)
    if value > today + timedelta(days=400):
        raise CaseworkError(_l("This date is more than a year ahead. Please choose an earlier date."), name)
    return value


def notify(session: Session, staff_id: int | None, kind: str, case: Case | None, params: dict | None = None,
           dedupe_key: str | None = None) -> None:
    if staff_id is None:
        return
    if dedupe_key is not None and session.scalar(
        select(Notice.id).where(Notice.staff_id == staff_id, Notice.dedupe_key == dedupe_key)
    ):
        return
    session.add(Notice(staff_id=staff_id, case_id=case.id if case else None, kind=kind, params=params or {},
                       dedupe_key=dedupe_key, created_at=utcnow()))


def _current_class(session: Session, child_id: int) -> SchoolClass | None:
    return session.scalar(
        select(SchoolClass)
        .join(Enrolment, Enrolment.class_id == SchoolClass.id)
        .where(Enrolment.child_id == child_id, Enrolment.school_year_id == current_year_id_subquery())
    )


# -- opening ----------------------------------------------------------------------


def open_case_for(session: Session, principal: Principal, child_id: int) -> Case | None:
    return session.scalar(
        select(Case).where(Case.child_id == child_id, Case.status.in_(OPEN_STATUSES),
                           Case.id.in_(visible_case_ids(principal)))
    )


def open_case(
    session: Session,
    actor: Principal,
    child_id: int,
    *,
    source: CaseSource = CaseSource.manual,
    flag_id: int | None = None,
    alert_id: int | None = None,
    urgency: int = 0,
    flagged_at: datetime | None = None,
    uses_linkage: bool = False,
    uses_survey: bool = False,
) -> Case:
    """Open a case for a child, or return the child's open case (adding the flag to it).

    ``actor`` is a member of staff who may see the child, or the system (the
    job that opens cases for new flags).
    """
    if actor.kind == "staff" and not can_see_child(session, actor, child_id):
        raise NotFound(child_id)
    # One open case per child: whoever opens it holds the child's row lock while looking for one.
    once.lock(session, Child, child_id)
    existing = session.scalar(select(Case).where(Case.child_id == child_id, Case.status.in_(OPEN_STATUSES))
                              .execution_options(populate_existing=True))
    if existing is not None:
        changed = False
        if flag_id is not None and existing.flag_id is None:
            existing.flag_id, changed = flag_id, True
        if alert_id is not None and existing.alert_id is None:
            existing.alert_id, changed = alert_id, True
        if uses_linkage and not existing.uses_linkage:
            existing.uses_linkage, changed = True, True
        if uses_survey and not existing.uses_survey:
            existing.uses_survey, changed = True, True
        if urgency > existing.urgency:
            existing.urgency, changed = urgency, True
        if changed:
            _flush(session)
        return existing
    cls = _current_class(session, child_id)
    if cls is None:
        raise CaseworkError(_l("This child has no class this school year, so no case can be opened."))
    now = utcnow()
    flagged_at = flagged_at or now
    case = Case(
        child_id=child_id,
        school_id=cls.school_id,
        teacher_id=cls.homeroom_teacher_id,
        source=source,
        flag_id=flag_id,
        alert_id=alert_id,
        urgency=urgency,
        uses_linkage=uses_linkage,
        uses_survey=uses_survey,
        status=CaseStatus.flagged,
        flagged_at=flagged_at,
        assessment_due=tokyo_today(flagged_at) + timedelta(days=ASSESSMENT_DAYS),
        created_at=now,
        updated_at=now,
    )
    session.add(case)
    session.flush()
    _event(session, actor, case, "opened", old=None, detail={"source": source.value, "flag_id": flag_id})
    session.flush()
    return case


def open_from_flag(session: Session, actor: Principal, flag_id: int) -> Case:
    """Open (or find) the case for a screening flag this person may see."""
    from backoffice.casework import flags

    flag = flags.visible_open_flag(session, actor, flag_id)
    if flag is None:
        raise NotFound(flag_id)
    linkage, survey = flags.purposes_of(flag)
    return open_case(
        session, actor, flag.child_id, source=CaseSource.flag, flag_id=flag.id, urgency=flag.urgency or 0,
        flagged_at=flag.created_at, uses_linkage=linkage, uses_survey=survey,
    )


def open_from_alert(session: Session, actor: Principal, alert_id: int) -> Case:
    """Open (or find) the case for a help request from a check-in."""
    from surveys.models import HelpAlert

    alert = session.scalar(
        select(HelpAlert).where(HelpAlert.id == alert_id, HelpAlert.child_id.in_(visible_child_ids(actor)))
    )
    if alert is None:
        raise NotFound(alert_id)
    # A request for help is not consent-based (it reaches an adult whatever the consent),
    # so the case rests on no consented data and no consent event closes it.
    return open_case(session, actor, alert.child_id, source=CaseSource.alert, alert_id=alert.id, urgency=3,
                     flagged_at=alert.created_at)


# -- assessment ---------------------------------------------------------------------


@dataclass
class AssessmentData:
    proposal: str
    attendance: str = Concern.none
    attendance_note: str | None = None
    learning: str = Concern.none
    learning_note: str | None = None
    health: str = Concern.none
    health_note: str | None = None
    relationships: str = Concern.none
    relationships_note: str | None = None
    family_contact: str = Concern.none
    family_contact_note: str | None = None
    child_voice: str | None = None
    notes: str | None = None
    review_date: date | None = None
    no_concern_reason: str | None = None


def assess(session: Session, actor: Principal, case_id: int, expected_version: int | None,
           data: AssessmentData, today: date | None = None) -> Assessment:
    """The teacher's assessment, ending in a proposal for the school."""
    today = today or tokyo_today()
    case = _case(session, actor, case_id, for_update=True)
    if actor.role not in (Role.teacher, Role.school_lead):
        raise NotFound(case_id)
    if case.status == CaseStatus.closed:
        raise CaseworkError(_l("This case is closed. Reopen it before recording an assessment."))
    if case.status not in (*AWAITING_ASSESSMENT, CaseStatus.assessed):
        raise CaseworkError(_l("The school has already decided on this case; an assessment can no longer be changed."))
    _check_version(case, expected_version)
    try:
        proposal = Proposal(data.proposal)
    except ValueError:
        raise CaseworkError(_l("Please choose a proposal."), "proposal") from None
    levels = {}
    for name in ("attendance", "learning", "health", "relationships", "family_contact"):
        try:
            levels[name] = Concern(getattr(data, name) or Concern.none)
        except ValueError:
            raise CaseworkError(_l("Please choose a level of concern."), name) from None
    review_date = None
    reason = _text(data.no_concern_reason, "no_concern_reason")
    if proposal == Proposal.keep_watching:
        review_date = _future_date(data.review_date, today, "review_date")
    if proposal == Proposal.no_concern and not reason:
        raise CaseworkError(_l("Please give the reason why there is no concern: it is recorded as an override of the flag."),
                            "no_concern_reason")
    a = Assessment(
        case_id=case.id, child_id=case.child_id, author_id=actor.id, created_at=utcnow(), proposal=proposal,
        review_date=review_date, no_concern_reason=reason if proposal == Proposal.no_concern else None,
        child_voice=_text(data.child_voice, "child_voice"), notes=_text(data.notes, "notes"), **levels,
        **{f"{n}_note": _text(getattr(data, f"{n}_note"), f"{n}_note") for n in levels},
    )
    session.add(a)
    case.assessed_at = a.created_at
    if case.status != CaseStatus.assessed:
        _move(session, actor, case, CaseStatus.assessed, "assessed", {"proposal": proposal.value})
    else:
        _event(session, actor, case, "assessed", detail={"proposal": proposal.value})
    if proposal == Proposal.no_concern and case.flag_id is not None:
        _event(session, actor, case, "flag_override", detail={"flag_id": case.flag_id})
    _flush(session)
    return a


def latest_assessments(session: Session, case_ids) -> dict[int, Assessment]:
    """The latest assessment of each case, in one query."""
    case_ids = list(case_ids)
    if not case_ids:
        return {}
    newest = (
        select(func.max(Assessment.id)).where(Assessment.case_id.in_(case_ids)).group_by(Assessment.case_id)
    )
    return {a.case_id: a for a in session.scalars(select(Assessment).where(Assessment.id.in_(newest)))}


def latest_assessment(session: Session, case_id: int) -> Assessment | None:
    return session.scalar(
        select(Assessment).options(joinedload(Assessment.author))
        .where(Assessment.case_id == case_id).order_by(Assessment.id.desc()).limit(1)
    )


# -- the school case meeting ---------------------------------------------------------


def create_meeting(session: Session, actor: Principal, school_id: int, held_on: date | None,
                   today: date | None = None) -> Meeting:
    today = today or tokyo_today()
    if actor.role != Role.school_lead or not _in_school(session, actor, school_id):
        raise NotFound(school_id)
    if held_on is None:
        raise CaseworkError(_l("Please give a date."), "held_on")
    if held_on < today - timedelta(days=31):
        raise CaseworkError(_l("Meetings can be recorded up to a month after they were held."), "held_on")
    if held_on > today + timedelta(days=365):
        raise CaseworkError(_l("This date is more than a year ahead. Please choose an earlier date."), "held_on")
    m = Meeting(school_id=school_id, held_on=held_on, created_by_id=actor.id, created_at=utcnow())
    session.add(m)
    session.flush()
    audit.record(session, actor, "casework.meeting_created", detail={"meeting_id": m.id, "school_id": school_id})
    return m


def get_meeting(session: Session, actor: Principal, meeting_id: int) -> Meeting:
    m = session.scalar(
        select(Meeting).where(Meeting.id == meeting_id).options(
            selectinload(Meeting.items).selectinload(MeetingItem.case),
            selectinload(Meeting.attendees).selectinload(MeetingAttendee.staff),
        ).execution_options(populate_existing=True)
    )
    if m is None or actor.role != Role.school_lead or not _in_school(session, actor, m.school_id):
        raise NotFound(meeting_id)
    return m


def meetings_for(session: Session, actor: Principal) -> list[tuple[Meeting, int, int]]:
    """Meetings of this lead's schools with (cases listed, cases decided)."""
    listed = (
        select(MeetingItem.meeting_id, func.count().label("n"), func.count(MeetingItem.decision).label("d"))
        .group_by(MeetingItem.meeting_id)
        .subquery()
    )
    rows = session.execute(
        select(Meeting, func.coalesce(listed.c.n, 0), func.coalesce(listed.c.d, 0))
        .outerjoin(listed, listed.c.meeting_id == Meeting.id)
        .where(Meeting.school_id.in_(visible_school_ids(actor)))
        .order_by(Meeting.held_on.desc(), Meeting.id.desc())
        .limit(200)
    ).all()
    return [(m, n, d) for m, n, d in rows]


def school_staff(session: Session, school_id: int, roles=None) -> list[Staff]:
    q = (
        select(Staff)
        .join(StaffScope, StaffScope.staff_id == Staff.id)
        .where(StaffScope.school_id == school_id, Staff.active.is_(True))
        .order_by(Staff.role, Staff.name)
    )
    if roles:
        q = q.where(Staff.role.in_(roles))
    return list(session.scalars(q))


def set_attendees(session: Session, actor: Principal, meeting_id: int, staff_ids: list[int], others: str | None) -> Meeting:
    once.lock(session, Meeting, meeting_id)  # two saves at once: one after the other, never a half-replaced list
    m = get_meeting(session, actor, meeting_id)
    allowed = {s.id for s in school_staff(session, m.school_id)}
    unknown = set(staff_ids) - allowed
    if unknown:
        raise CaseworkError(_l("Only staff of this school can be recorded as attendees."), "attendees")
    # Keep the rows of those still attending (a new row for the same person would be inserted
    # before the old one is deleted, and meet the unique constraint).
    wanted = set(staff_ids)
    m.attendees = [a for a in m.attendees if a.staff_id in wanted] + [
        MeetingAttendee(staff_id=sid) for sid in sorted(wanted - {a.staff_id for a in m.attendees})]
    m.other_attendees = _text(others, "other_attendees")
    session.flush()
    audit.record(session, actor, "casework.meeting_attendees", detail={"meeting_id": m.id, "count": len(m.attendees)})
    return m


def cases_ready_for_meeting(session: Session, actor: Principal, school_id: int) -> list[Case]:
    """Open cases of the school that the school has not decided yet (assessed first)."""
    return list(
        session.scalars(
            select(Case)
            .where(Case.school_id == school_id, Case.id.in_(visible_case_ids(actor)),
                   Case.status.in_((CaseStatus.flagged, CaseStatus.reopened, CaseStatus.assessed,
                                    CaseStatus.under_review)))
            .order_by((Case.status == CaseStatus.assessed).desc(), Case.urgency.desc(), Case.flagged_at)
        )
    )


def list_case(session: Session, actor: Principal, meeting_id: int, case_id: int) -> MeetingItem:
    case = _case(session, actor, case_id, for_update=True)
    m = get_meeting(session, actor, meeting_id)
    if case.school_id != m.school_id:
        raise NotFound(case_id)
    if case.status == CaseStatus.closed:
        raise CaseworkError(_l("This case is closed. Reopen it before listing it for a meeting."))
    if any(i.case_id == case.id for i in m.items):
        raise CaseworkError(_l("This case is already on the meeting's list."))
    item = MeetingItem(meeting_id=m.id, case_id=case.id, child_id=case.child_id)
    m.items.append(item)
    _event(session, actor, case, "listed", detail={"meeting_id": m.id})
    session.flush()
    return item


def decide(session: Session, actor: Principal, meeting_id: int, case_id: int, expected_version: int | None,
           decision: str, note: str | None = None, review_date: date | None = None,
           today: date | None = None) -> Case:
    """The school's decision on a case at a meeting; the teacher is told."""
    from backoffice.casework import flags

    today = today or tokyo_today()
    case = _case(session, actor, case_id, for_update=True)  # first: the meeting is read after the lock
    m = get_meeting(session, actor, meeting_id)
    item = next((i for i in m.items if i.case_id == case_id), None)
    if item is None:
        raise NotFound(case_id)
    if case.status == CaseStatus.closed:
        raise CaseworkError(_l("This case is closed: no decision can be recorded on it. Reopen it first."))
    if item.decision is not None:
        raise CaseworkError(_l("The decision on this case was already recorded at this meeting."))
    if case.status in (CaseStatus.decided, CaseStatus.plan_active):
        raise CaseworkError(_l("The school has decided on this case already. Start its review before a new decision."))
    _check_version(case, expected_version)
    try:
        decision = Decision(decision)
    except ValueError:
        raise CaseworkError(_l("Please choose a decision."), "decision") from None
    note = _text(note, "note")
    if decision == Decision.keep_watching:
        review_date = _future_date(review_date, today, "review_date")
    elif decision == Decision.close and not note:
        raise CaseworkError(_l("Please give the reason for closing the case."), "note")
    now = utcnow()
    item.decision, item.decision_note, item.decided_at, item.decided_by_id = decision, note, now, actor.id
    m.status = MeetingStatus.held
    case.decision = decision
    if case.decided_at is None:
        case.decided_at = now
    if decision == Decision.close:
        case.closed_at, case.close_reason, case.close_note = now, CloseReason.no_concern, note
        case.review_due = None
        _move(session, actor, case, CaseStatus.closed, "decided", {"decision": decision.value, "meeting_id": m.id})
    else:
        case.review_due = review_date if decision == Decision.keep_watching else None
        _move(session, actor, case, CaseStatus.decided, "decided", {"decision": decision.value, "meeting_id": m.id})
    if case.flag_id is not None:
        flags.resolve(session, actor, case.flag_id, confirmed=decision != Decision.close, note=note)
    notify(session, case.teacher_id, "decision", case, {"decision": decision.value})
    _flush(session)
    return case


# -- support plan ---------------------------------------------------------------------


@dataclass
class ActionData:
    text: str
    owner_id: int | None
    due_on: date | None


@dataclass
class PlanData:
    review_date: date | None
    goals: list[str] = field(default_factory=list)
    actions: list[ActionData] = field(default_factory=list)


PLAN_ROLES = (Role.school_lead, Role.counsellor, Role.social_worker)


def get_plan(session: Session, case_id: int) -> SupportPlan | None:
    """The case's plan with its goals and actions (and their owners): three queries however long the plan."""
    return session.scalar(
        select(SupportPlan).where(SupportPlan.case_id == case_id).options(
            selectinload(SupportPlan.goals), selectinload(SupportPlan.actions).joinedload(PlanAction.owner))
    )


def save_plan(session: Session, actor: Principal, case_id: int, expected_version: int | None, data: PlanData,
              today: date | None = None) -> SupportPlan:
    """Make or change the support plan: goals, actions with owner and due date, a review date."""
    today = today or tokyo_today()
    case = _case(session, actor, case_id, for_update=True)
    if actor.role not in PLAN_ROLES:
        raise NotFound(case_id)
    if case.status == CaseStatus.closed:
        raise CaseworkError(_l("This case is closed. Reopen it before changing its plan."))
    plan = get_plan(session, case.id)
    if plan is None and not (case.status == CaseStatus.decided and case.decision == Decision.support_plan) \
            and case.status != CaseStatus.under_review:
        raise CaseworkError(_l("A support plan is made after the school has decided that support is needed."))
    _check_version(case, expected_version)
    review_date = _future_date(data.review_date, today, "review_date")
    goals = [g for g in (_text(g, "goals") for g in data.goals) if g]
    if not goals:
        raise CaseworkError(_l("Please give at least one goal."), "goals")
    allowed_owners = {s.id for s in school_staff(session, case.school_id)}
    actions = []
    for a in data.actions:
        text = _text(a.text, "actions")
        if not text:
            continue
        if a.owner_id not in allowed_owners:
            raise CaseworkError(_l("Each action needs an owner from this school's staff."), "actions")
        due = _future_date(a.due_on, today, "actions")
        actions.append((text, a.owner_id, due))
    if not actions:
        raise CaseworkError(_l("Please give at least one action with an owner and a due date."), "actions")
    if plan is None:
        plan = SupportPlan(case_id=case.id, child_id=case.child_id, created_by_id=actor.id, created_at=utcnow(),
                           review_date=review_date)
        session.add(plan)
        action = "plan_made"
    else:
        plan.goals.clear()
        for act in list(plan.actions):
            if act.done_at is None:
                plan.actions.remove(act)
        plan.review_date = review_date
        action = "plan_changed"
    plan.goals.extend(PlanGoal(child_id=case.child_id, text=g) for g in goals)
    plan.actions.extend(
        PlanAction(case_id=case.id, child_id=case.child_id, text=t, owner_id=o, due_on=d) for t, o, d in actions
    )
    case.review_due = review_date
    detail = {"goals": len(goals), "actions": len(actions)}
    if case.status != CaseStatus.plan_active:
        _move(session, actor, case, CaseStatus.plan_active, action, detail)
    else:
        case.updated_at = utcnow()  # bumps the version: the plan is part of the case
        _event(session, actor, case, action, detail=detail)
    for _, owner, _ in actions:
        if owner != actor.id:
            notify(session, owner, "action_assigned", case)
    _flush(session)
    return plan


def complete_action(session: Session, actor: Principal, action_id: int) -> PlanAction:
    act = session.get(PlanAction, action_id)
    if act is None:
        raise NotFound(action_id)
    case = _case(session, actor, act.case_id)
    if act.owner_id != actor.id and not (actor.role == Role.school_lead and _in_school(session, actor, case.school_id)):
        raise NotFound(action_id)
    if case.status == CaseStatus.closed:
        raise CaseworkError(_l("This case is closed."))
    if act.done_at is not None or not once.claim(session, PlanAction, act.id, PlanAction.done_at.is_(None),
                                                  done_at=utcnow()):
        raise CaseworkError(_l("This action is already done."))
    _event(session, actor, case, "action_done", detail={"action_id": act.id})
    session.flush()
    return act


# -- referrals -------------------------------------------------------------------------


def refer(session: Session, actor: Principal, case_id: int, target: str, *, receiver_id: int | None = None,
          service_id: int | None = None, reason: str | None = None) -> Referral:
    """Refer the child; outside the school only with the family's share_with_partners consent."""
    from consent.gate import is_consented

    # The case's lock: of two leads referring at once, the second sees the first's open referral.
    case = _lead_case(session, actor, case_id, for_update=True)
    if case.status == CaseStatus.closed:
        raise CaseworkError(_l("This case is closed: no referral can be made. Reopen it first."))
    if case.status not in (CaseStatus.decided, CaseStatus.plan_active, CaseStatus.under_review):
        raise CaseworkError(_l("A referral is made after the school's decision."))
    try:
        target = ReferralTarget(target)
    except ValueError:
        raise CaseworkError(_l("Please choose where to refer the child."), "target") from None
    external = target in EXTERNAL_TARGETS
    if target in (ReferralTarget.counsellor, ReferralTarget.social_worker):
        role = Role.counsellor if target == ReferralTarget.counsellor else Role.social_worker
        if receiver_id not in {s.id for s in school_staff(session, case.school_id, [role])}:
            raise CaseworkError(_l("Please choose a receiver with that role working for this school."), "receiver_id")
        service_id = None
    else:
        receiver_id = None
    if target == ReferralTarget.resource:
        from resources.models import Service, ServiceStatus

        svc = session.get(Service, service_id) if service_id else None
        if svc is None or svc.status != ServiceStatus.published:
            raise CaseworkError(_l("Please choose a published service from the catalogue."), "service_id")
    else:
        service_id = None
    if external and not is_consented(session, case.child_id, SHARE_PURPOSE):
        audit.record(session, actor, "casework.referral_refused", child_id=case.child_id, purpose=PURPOSE,
                     detail={"case_id": case.id, "target": target.value, "reason": "no_consent"})
        raise ConsentRefused(
            _l("This referral leaves the school, and the family has not consented to sharing with partners "
               "(share_with_partners). It was not made. Talk with the family first, or refer within the school."),
            "target",
        )
    if session.scalar(select(Referral.id).where(
        Referral.case_id == case.id, Referral.target == target, Referral.status.in_(OPEN_REFERRAL),
        Referral.receiver_id.is_(None) if receiver_id is None else Referral.receiver_id == receiver_id,
    )):
        raise CaseworkError(_l("An open referral to this receiver already exists for this case."), "target")
    r = Referral(case_id=case.id, child_id=case.child_id, school_id=case.school_id, target=target,
                 receiver_id=receiver_id, service_id=service_id, external=external,
                 reason=_text(reason, "reason"), created_by_id=actor.id, created_at=utcnow(),
                 answer_due=tokyo_today() + timedelta(days=REFERRAL_ANSWER_DAYS))
    session.add(r)
    session.flush()
    _event(session, actor, case, "referred", detail={"referral_id": r.id, "target": target.value})
    notify(session, receiver_id, "referral", case)
    session.flush()
    return r


def _referral(session: Session, actor: Principal, referral_id: int) -> tuple[Referral, Case]:
    r = session.get(Referral, referral_id)
    if r is None:
        raise NotFound(referral_id)
    case = _case(session, actor, r.case_id)
    return r, case


def _may_answer(session: Session, actor: Principal, r: Referral, case: Case) -> bool:
    if r.receiver_id is not None:
        return r.receiver_id == actor.id
    # A partner outside the school has no account: the school lead records its answer.
    return actor.role == Role.school_lead and _in_school(session, actor, case.school_id)


def respond(session: Session, actor: Principal, referral_id: int, accept: bool, note: str | None = None) -> Referral:
    r, case = _referral(session, actor, referral_id)
    if not _may_answer(session, actor, r, case):
        raise NotFound(referral_id)
    if r.status != ReferralStatus.in_progress:
        raise CaseworkError(_l("This referral has already been answered."))
    note = _text(note, "note")
    if not accept and not note:
        raise CaseworkError(_l("Please say why the referral is rejected."), "note")
    # One answer: the update that records it matches only a referral still waiting for one.
    if not once.claim(session, Referral, r.id, Referral.status == ReferralStatus.in_progress,
                      status=ReferralStatus.accepted if accept else ReferralStatus.rejected,
                      response_note=note, responded_at=utcnow(), responded_by_id=actor.id):
        raise CaseworkError(_l("This referral has already been answered."))
    _event(session, actor, case, "referral_accepted" if accept else "referral_rejected", detail={"referral_id": r.id})
    notify(session, r.created_by_id, "referral_answer", case, {"accepted": accept})
    session.flush()
    return r


def finish_referral(session: Session, actor: Principal, referral_id: int, *, revoke: bool = False) -> Referral:
    r, case = _referral(session, actor, referral_id)
    lead = actor.role == Role.school_lead and _in_school(session, actor, case.school_id)
    if revoke:
        if not lead:
            raise NotFound(referral_id)
        if r.status not in OPEN_REFERRAL or not once.claim(
                session, Referral, r.id, Referral.status.in_(OPEN_REFERRAL),
                status=ReferralStatus.revoked, closed_at=utcnow()):
            raise CaseworkError(_l("Only an open referral can be revoked."))
    else:
        if not (lead or _may_answer(session, actor, r, case)):
            raise NotFound(referral_id)
        if r.status != ReferralStatus.accepted or not once.claim(
                session, Referral, r.id, Referral.status == ReferralStatus.accepted,
                status=ReferralStatus.done, closed_at=utcnow()):
            raise CaseworkError(_l("Only an accepted referral can be marked done."))
    _event(session, actor, case, "referral_revoked" if revoke else "referral_done", detail={"referral_id": r.id})
    session.flush()
    return r


def referrals_of(session: Session, case_id: int) -> list[Referral]:
    return list(session.scalars(
        select(Referral).options(joinedload(Referral.receiver)).where(Referral.case_id == case_id).order_by(Referral.id)
    ))


def referrals_to(session: Session, actor: Principal) -> list[tuple[Referral, Case]]:
    """Referrals addressed to this counsellor or social worker (open first), one query; audited."""
    rows = session.execute(
        select(Referral, Case)
        .join(Case, Case.id == Referral.case_id)
        .options(joinedload(Case.child), joinedload(Case.school))
        .where(Referral.receiver_id == actor.id)
        .order_by((Referral.status == ReferralStatus.in_progress).desc(), Referral.created_at.desc())
        .limit(500)
    ).all()
    audit_reads(session, actor, [c.child_id for _r, c in rows], "casework.referrals")  # the list names each child
    return [(r, c) for r, c in rows]


# -- review, closure, reopening ----------------------------------------------------------


def start_review(session: Session, actor: Principal, case_id: int, expected_version: int | None) -> Case:
    case = _lead_case(session, actor, case_id, for_update=True)
    if case.status == CaseStatus.closed:
        raise CaseworkError(_l("This case is closed. Reopen it first."))
    if case.status not in (CaseStatus.plan_active, CaseStatus.decided):
        raise CaseworkError(_l("Only a case with a decision or an active plan can be reviewed."))
    _check_version(case, expected_version)
    _move(session, actor, case, CaseStatus.under_review, "review_started")
    _flush(session)
    return case


def continue_after_review(session: Session, actor: Principal, case_id: int, expected_version: int | None,
                          review_date: date | None, today: date | None = None) -> Case:
    today = today or tokyo_today()
    case = _lead_case(session, actor, case_id, for_update=True)
    if case.status != CaseStatus.under_review:
        raise CaseworkError(_l("This case is not under review."))
    _check_version(case, expected_version)
    case.review_due = _future_date(review_date, today, "review_date")
    plan = get_plan(session, case.id)
    if plan is not None:
        plan.review_date = case.review_due
    to = CaseStatus.plan_active if plan is not None else CaseStatus.decided
    _move(session, actor, case, to, "review_continued")
    _flush(session)
    return case


def close_case(session: Session, actor: Principal, case_id: int, expected_version: int | None, reason: str,
               note: str | None = None) -> Case:
    from backoffice.casework import flags

    case = _lead_case(session, actor, case_id, for_update=True)
    if case.status == CaseStatus.closed:
        raise CaseworkError(_l("This case is already closed."))
    _check_version(case, expected_version)
    try:
        reason = CloseReason(reason)
    except ValueError:
        raise CaseworkError(_l("Please choose a reason for closing."), "reason") from None
    if reason == CloseReason.consent_withdrawn:
        raise CaseworkError(_l("Cases are closed for withdrawn consent by the system only."), "reason")
    note = _text(note, "note")
    if reason == CloseReason.other and not note:
        raise CaseworkError(_l("Please describe the reason."), "note")
    now = utcnow()
    case.closed_at, case.close_reason, case.close_note, case.review_due = now, reason, note, None
    if case.decided_at is None:
        case.decided_at = now
    session.execute(
        update(Referral)
        .where(Referral.case_id == case.id, Referral.status.in_(OPEN_REFERRAL))
        .values(status=ReferralStatus.revoked, closed_at=now)
        .execution_options(synchronize_session="fetch")
    )
    _move(session, actor, case, CaseStatus.closed, "closed", {"reason": reason.value})
    if case.flag_id is not None:
        flags.resolve(session, actor, case.flag_id, confirmed=reason != CloseReason.no_concern, note=note)
    notify(session, case.teacher_id, "closed", case, {"reason": reason.value})
    _flush(session)
    return case


def reopen_case(session: Session, actor: Principal, case_id: int, expected_version: int | None,
                today: date | None = None) -> Case:
    today = today or tokyo_today()
    case = _lead_case(session, actor, case_id, for_update=True)
    if case.status != CaseStatus.closed:
        raise CaseworkError(_l("Only a closed case can be reopened."))
    if case.close_reason == CloseReason.consent_withdrawn:
        raise CaseworkError(_l("This case was closed because consent was withdrawn; it cannot be reopened."))
    once.lock(session, Child, case.child_id)  # one open case per child, as in open_case
    other = session.scalar(select(Case.id).where(Case.child_id == case.child_id, Case.status.in_(OPEN_STATUSES)))
    if other is not None:
        raise CaseworkError(_l("This child already has an open case."))
    _check_version(case, expected_version)
    case.closed_at = case.close_reason = case.close_note = None
    case.decision = None
    case.assessment_due = today + timedelta(days=ASSESSMENT_DAYS)
    cls = _current_class(session, case.child_id)
    if cls is not None:
        case.teacher_id = cls.homeroom_teacher_id
    _move(session, actor, case, CaseStatus.reopened, "reopened")
    notify(session, case.teacher_id, "reopened", case)
    _flush(session)
    return case


def history(session: Session, case_id: int) -> list[CaseEvent]:
    """The case's history with each actor, in one query however long it is."""
    return list(session.scalars(
        select(CaseEvent).options(joinedload(CaseEvent.actor)).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id)
    ))


# -- notices ------------------------------------------------------------------------------


def notices_for(session: Session, actor: Principal, limit: int = 100) -> list[Notice]:
    return list(session.scalars(
        select(Notice).where(Notice.staff_id == actor.id).order_by(Notice.read_at.is_not(None), Notice.id.desc()).limit(limit)
    ))


def unread_count(session: Session, actor: Principal) -> int:
    return int(session.scalar(select(func.count()).select_from(Notice).where(
        Notice.staff_id == actor.id, Notice.read_at.is_(None))) or 0)


def mark_read(session: Session, actor: Principal) -> int:
    res = session.execute(
        update(Notice).where(Notice.staff_id == actor.id, Notice.read_at.is_(None)).values(read_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return res.rowcount or 0


# -- consent withdrawal -------------------------------------------------------------------


def close_for_withdrawal(session: Session, child_ids: list[int], purpose: str) -> dict[str, int]:
    """Close, set-based, the open cases of these children tied to the withdrawn purpose.

    The teacher is told only that the case was closed because consent was
    withdrawn (no purpose, no detail). Open referrals of those cases are revoked.
    """
    if not child_ids:
        return {"cases_closed": 0}
    column = Case.uses_linkage if purpose == "data_linkage" else Case.uses_survey
    # A case a member of staff opened, or one that carries a child's request for help, is not
    # consent-based: no consent event closes it (the consented evidence goes with its purgers).
    cond = and_(Case.child_id.in_(child_ids), Case.status.in_(OPEN_STATUSES), column.is_(True),
                Case.source == CaseSource.flag, Case.alert_id.is_(None))
    rows = session.execute(select(Case.id, Case.child_id, Case.status, Case.teacher_id).where(cond)).all()
    if not rows:
        return {"cases_closed": 0}
    ids = [r.id for r in rows]
    now = utcnow()
    session.execute(
        update(Case).where(Case.id.in_(ids)).values(
            status=CaseStatus.closed, closed_at=now, close_reason=CloseReason.consent_withdrawn, review_due=None,
            updated_at=now, version=Case.version + 1,
        ).execution_options(synchronize_session=False)
    )
    session.execute(
        update(Referral).where(Referral.case_id.in_(ids), Referral.status.in_(OPEN_REFERRAL))
        .values(status=ReferralStatus.revoked, closed_at=now).execution_options(synchronize_session=False)
    )
    session.execute(insert(CaseEvent), [
        {"case_id": r.id, "child_id": r.child_id, "at": now, "actor_staff_id": None, "actor_role": "system",
         "action": "closed", "from_status": r.status.value, "to_status": CaseStatus.closed.value,
         "detail": {"reason": CloseReason.consent_withdrawn.value}}
        for r in rows
    ])
    notices = [
        {"staff_id": r.teacher_id, "case_id": r.id, "kind": "consent_withdrawn", "params": {}, "created_at": now,
         "dedupe_key": f"withdrawn:{r.id}"}
        for r in rows if r.teacher_id is not None
    ]
    if notices:
        session.execute(insert(Notice), notices)
    # Objects already in the session must not keep their old status and version.
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Case) and obj.id in ids:
            session.expire(obj)
    session.flush()
    return {"cases_closed": len(ids)}


def purge_linkage(session: Session, child_ids: list[int]) -> dict[str, int]:
    return close_for_withdrawal(session, child_ids, "data_linkage")


def purge_survey(session: Session, child_ids: list[int]) -> dict[str, int]:
    return close_for_withdrawal(session, child_ids, "wellbeing_survey")


def disclosure_rows(session: Session, child_id: int) -> list[dict]:
    """What the family may see of its child's cases (開示): dates and statuses, no staff names, no notes."""
    rows = session.execute(
        select(Case.id, Case.status, Case.source, Case.flagged_at, Case.decided_at, Case.closed_at, Case.close_reason)
        .where(Case.child_id == child_id).order_by(Case.id)
    ).all()
    from consent.hooks import RELEASED_VALUES

    out = []
    for i, r in enumerate(rows):
        row = {"case": i + 1, "status": r.status.value, "source": r.source.value,
               "opened": r.flagged_at.date().isoformat(), "decided": r.decided_at.date().isoformat() if r.decided_at else None,
               "closed": r.closed_at.date().isoformat() if r.closed_at else None,
               "close_reason": r.close_reason.value if r.close_reason else None}
        if r.source == CaseSource.alert:
            # A case opened from a child's request for help reads as one a member of staff
            # opened (which is what happened); that it came from a request for help is
            # withheld from the family unless the data steward releases it (APPI art. 78(1)(i)).
            row["source"] = CaseSource.manual.value
            row[RELEASED_VALUES] = {"source": CaseSource.alert.value}
        out.append(row)
    return out


def withheld_audit(action: str, detail: dict) -> bool:
    """Audit rows that show staff reading a child's request for help (kept out of a disclosure).

    Not the opening of a case from one: the case is disclosed (as one a member
    of staff opened), so the family sees a staff action for it, as for any case.
    """
    return action == "child.read" and detail.get("view") == ALERT_QUEUE_READ


ALERT_QUEUE_READ = "casework.queue.alerts"


def disclosure_assessments(session: Session, child_id: int) -> list[dict]:
    """The teachers' assessments of the child (開示), without staff names.

    Levels of concern per domain, the proposal and its dates are disclosed. The
    free-text notes are not: they are a record of evaluation and guidance whose
    release can put a child at risk (a note on family contact, or the child's
    own words, read by the family: APPI art. 78(1)(i)). Nothing in the row says
    whether notes exist (the disclosure's one sentence about what may be left
    out covers them); the data steward can release them for one request
    (``RELEASED_VALUES``: ``notes``, by field).
    """
    from consent.hooks import RELEASED_VALUES

    rows = session.execute(
        select(Assessment, Case.id.label("case_id")).join(Case, Case.id == Assessment.case_id)
        .where(Assessment.child_id == child_id).order_by(Assessment.id)
    ).all()
    case_numbers = {cid: i + 1 for i, cid in enumerate(sorted({r.case_id for r in rows}))}
    out = []
    for r in rows:
        a = r.Assessment
        names = [f"{d}_note" for d in DOMAINS] + ["child_voice", "notes", "no_concern_reason"]
        notes = {n: getattr(a, n) for n in names if getattr(a, n)}
        row = {
            "case": case_numbers[r.case_id],
            "assessed_on": a.created_at.astimezone(TOKYO).date().isoformat(),
            **{d: getattr(a, d).value for d in DOMAINS},
            "proposal": a.proposal.value,
            "review_date": a.review_date.isoformat() if a.review_date else None,
        }
        if notes:
            row[RELEASED_VALUES] = {"notes": notes}
        out.append(row)
    return out


def file_register_entries() -> list[dict]:
    """The casework file for the personal-information file register (個人情報ファイル簿)."""
    return [{
        "name": "児童生徒支援ケース記録（校内委員会）",
        "purpose_code": None,
        "items": ["児童生徒番号", "氏名", "学級", "ケースの状態と経過", "担任の見立て（出欠・学習・健康・人間関係・家庭との連絡）",
                  "子ども自身のことば", "校内委員会の決定", "支援計画（目標・取り組み）", "関係機関へのつなぎ"],
        "source": "学校（担任・管理職・スクールカウンセラー・スクールソーシャルワーカー）",
        "retention": "ケース終了の翌年度から5年",
    }]


def has_open_case(session: Session, child_id: int) -> bool:
    return bool(session.scalar(select(exists().where(Case.child_id == child_id, Case.status.in_(OPEN_STATUSES)))))
