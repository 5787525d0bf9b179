"""Answering, help alerts, signals and the staff's reading of answers.

Services take a session and explicit arguments (the acting principal, the
clock), flush and never commit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache

from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    Integer,
    Select,
    and_,
    bindparam,
    delete,
    exists,
    literal,
    select,
    update,
)
from sqlalchemy.orm import Session, joinedload

from consent import hooks as consent_hooks
from consent.gate import consented_child_ids
from consent.gate import is_consented as is_consented_child
from consent.models import LAPSE_WINDOW_DAYS
from portal import once
from portal.audit import service as audit
from portal.auth.access import can_see_child, current_year_id_subquery, visible_child_ids
from portal.auth.principal import Principal
from portal.orm import utcnow
from portal.people.models import Child, Enrolment, GuardianChild, Role, SchoolClass, Staff
from surveys import instruments, notify, reads, scoring
from surveys.instruments import Instrument
from surveys.models import (
    AlertReason,
    AssignmentStatus,
    ClosedDay,
    HelpAlert,
    SignalKind,
    SurveyAssignment,
    SurveyResponse,
    SurveySchedule,
    SurveySignal,
)
from surveys.scheduling import PURPOSE

# Who may read a child's free-text answers: the check-in tells the child
# "only the counsellor reads this", and that promise is kept here.
FREE_TEXT_ROLES = (Role.counsellor.value,)
# Who may read the notes staff write when they acknowledge a help alert
# (the adults who act on the alert or follow the child up).
ACK_NOTE_ROLES = (Role.teacher.value, Role.counsellor.value, Role.social_worker.value, Role.school_lead.value)
LOW_MOOD_WINDOW = 5
LOW_MOOD_COUNT = 3


class AnswerError(ValueError):
    """A submission that cannot be stored; ``errors`` maps item ids to messages."""

    def __init__(self, message, errors: dict | None = None):
        super().__init__(str(message))
        self.message = message
        self.errors = errors or {}


# -- finding assignments -----------------------------------------------------------


def _respondent_filter(principal: Principal):
    if principal.role == "student":
        return and_(SurveyAssignment.child_id == principal.id, SurveyAssignment.respondent == "student")
    if principal.role == "guardian":
        return and_(
            SurveyAssignment.respondent == "guardian",
            SurveyAssignment.child_id.in_(
                select(GuardianChild.child_id).where(GuardianChild.guardian_id == principal.id)
            ),
        )
    return literal(False)


def open_assignments(session: Session, principal: Principal, now: datetime) -> list[tuple[SurveyAssignment, Child]]:
    """The principal's assignments open now, for consented children only."""
    rows = session.execute(
        select(SurveyAssignment, Child)
        .join(Child, Child.id == SurveyAssignment.child_id)
        .where(
            _respondent_filter(principal),
            SurveyAssignment.status == AssignmentStatus.open,
            SurveyAssignment.opens_at <= now,
            SurveyAssignment.closes_at > now,
            SurveyAssignment.child_id.in_(consented_child_ids(PURPOSE)),
        )
        .order_by(SurveyAssignment.closes_at, SurveyAssignment.id)
    ).all()
    return [(a, c) for a, c in rows]


@dataclass
class AssignmentView:
    assignment: SurveyAssignment
    instrument: Instrument
    grade: int
    school_id: int
    consented: bool
    owned: bool


def load_assignment(session: Session, principal: Principal, assignment_id: int) -> AssignmentView | None:
    """The assignment with what answering needs; None if it does not exist.

    One query for a student (the gate is evaluated for that one child only,
    an index look-up whatever the size of the municipality); a guardian's
    assignment may be for any of their children, so the gate is asked
    afterwards, again for the one child.
    """
    if principal.role == "student":
        row = session.execute(_student_load_statement(), {"assignment_id": assignment_id, "me": principal.id}).first()
        if row is None:
            return None
        a, grade, school_id, is_owned, is_consented = row
    else:
        owned = exists().where(_respondent_filter(principal), SurveyAssignment.id == assignment_id)
        row = session.execute(
            select(SurveyAssignment, SurveySchedule.grade, SurveySchedule.school_id, owned)
            .join(SurveySchedule, SurveySchedule.id == SurveyAssignment.schedule_id)
            .where(SurveyAssignment.id == assignment_id)
        ).first()
        if row is None:
            return None
        a, grade, school_id, is_owned = row
        is_consented = bool(is_owned) and is_consented_child(session, a.child_id, PURPOSE)
    return AssignmentView(a, instruments.get(a.instrument_code), grade, school_id, bool(is_consented), bool(is_owned))


# The claim, on the table (Core): no ORM bookkeeping on the hot path.
_assignments = SurveyAssignment.__table__
_CLAIM = (
    update(_assignments)
    .where(_assignments.c.id == bindparam("assignment_id", type_=Integer), _assignments.c.status == AssignmentStatus.open)
    .values(status=AssignmentStatus.submitted, progress=None)
)


@cache
def _student_load_statement() -> Select:
    """The student's load query, built once with bound parameters.

    Building the gate's expression costs more CPU than running it; the morning
    peak runs this statement for every pupil, so it is constructed once per
    process (and SQLAlchemy's compiled cache then serves it).
    """
    me = bindparam("me", type_=Integer)
    return (
        select(
            SurveyAssignment,
            SurveySchedule.grade,
            SurveySchedule.school_id,
            and_(SurveyAssignment.child_id == me, SurveyAssignment.respondent == "student"),
            SurveyAssignment.child_id.in_(consented_child_ids(PURPOSE, only_child_id=me)),
        )
        .join(SurveySchedule, SurveySchedule.id == SurveyAssignment.schedule_id)
        .where(SurveyAssignment.id == bindparam("assignment_id", type_=Integer))
    )


def answerable(view: AssignmentView | None, now: datetime) -> AssignmentView:
    """Refuse with a clear message, or return the view for answering."""
    if view is None or not view.owned:
        raise AnswerError(_l("This check-in is not yours."))
    if not view.consented:
        raise AnswerError(_l("This check-in is not available."))
    a = view.assignment
    if a.status == AssignmentStatus.submitted:
        raise AnswerError(_l("You have already answered this. Thank you!"))
    if now < a.opens_at:
        raise AnswerError(_l("This check-in has not opened yet."))
    if a.status != AssignmentStatus.open or now >= a.closes_at:
        raise AnswerError(_l("The time for answering this check-in is over."))
    return view


def progress_of(a: SurveyAssignment) -> dict:
    if not a.progress:
        return {}
    try:
        data = json.loads(a.progress)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def save_progress(session: Session, principal: Principal, assignment_id: int, raw: dict, now: datetime) -> AssignmentView:
    """Keep a half-done answer set (only valid answers), so the child can resume."""
    view = answerable(load_assignment(session, principal, assignment_id), now)
    checked = scoring.check(view.instrument, view.grade, raw, partial=True)
    if not checked.ok:
        raise AnswerError(_l("Please check the answer."), checked.errors)
    merged = {**progress_of(view.assignment), **checked.answers, **checked.free_text}
    view.assignment.progress = json.dumps(merged, ensure_ascii=False)
    session.flush()
    return view


@dataclass
class Submitted:
    response: SurveyResponse
    alert: HelpAlert | None = None
    signals: list[SignalKind] = field(default_factory=list)
    duplicate: bool = False


def submit(
    session: Session, principal: Principal, assignment_id: int, raw: dict, now: datetime, *, view: AssignmentView | None = None
) -> Submitted:
    """Store one answer set for an assignment; a second submission stores nothing more.

    The number of queries does not depend on the child's history or the
    class size (asserted in the tests). A page that has just loaded the
    assignment with :func:`load_assignment` (for this principal) passes it
    as ``view`` to save the query.
    """
    if view is None or view.assignment.id != assignment_id:
        view = load_assignment(session, principal, assignment_id)
    if view is not None and view.owned and view.assignment.status == AssignmentStatus.submitted:
        existing = session.scalar(select(SurveyResponse).where(SurveyResponse.assignment_id == assignment_id))
        if existing is not None:
            return Submitted(existing, duplicate=True)
    view = answerable(view, now)
    inst, a = view.instrument, view.assignment
    merged = {**progress_of(a), **{k: v for k, v in raw.items() if v not in (None, "", [])}}
    checked = scoring.check(inst, view.grade, merged)
    if not checked.ok:
        raise AnswerError(_l("Some answers are missing or not valid."), checked.errors)
    result = scoring.score(inst, checked.answers)
    response = SurveyResponse(
        assignment_id=a.id,
        child_id=a.child_id,
        instrument_code=inst.code,
        instrument_version=a.instrument_version,
        respondent_kind=principal.kind,
        respondent_id=principal.id,
        submitted_at=now,
        answers=checked.answers,
        free_text=json.dumps(checked.free_text, ensure_ascii=False) if checked.free_text else None,
        score=result.score,
        low=result.low,
        critical=result.critical,
        help_requested=result.help,
    )
    # Claim the assignment first: the guarded UPDATE takes the row lock, so of
    # two concurrent submissions the second waits, then matches no row (its
    # WHERE is re-checked after the first commits) and stores nothing. The
    # unique assignment_id on responses stays as the last line of defence.
    claimed = session.execute(_CLAIM, {"assignment_id": a.id})
    if claimed.rowcount != 1:
        existing = session.scalar(select(SurveyResponse).where(SurveyResponse.assignment_id == assignment_id))
        if existing is not None:
            return Submitted(existing, duplicate=True)
        raise AnswerError(_l("The time for answering this check-in is over."))
    session.add(response)
    session.flush()
    out = Submitted(response)
    out.signals = _derive_signals(session, inst, response, result, now)
    if result.help or result.critical:
        out.alert = raise_alert(
            session,
            a.child_id,
            view.school_id,
            AlertReason.talk_request if result.help else AlertReason.critical_answer,
            now,
            response_id=response.id,
        )
    session.flush()
    return out


def _derive_signals(session: Session, inst: Instrument, response: SurveyResponse, result: scoring.Score, now: datetime) -> list[SignalKind]:
    kinds: list[tuple[SignalKind, float | None]] = []
    if inst.code == "mood" and result.low:
        recent = session.scalars(
            select(SurveyResponse.low)
            .where(SurveyResponse.child_id == response.child_id, SurveyResponse.instrument_code == "mood")
            .order_by(SurveyResponse.submitted_at.desc(), SurveyResponse.id.desc())
            .limit(LOW_MOOD_WINDOW)
        ).all()
        lows = sum(1 for x in recent if x)
        if lows >= LOW_MOOD_COUNT:
            kinds.append((SignalKind.low_mood_streak, float(lows)))
    if inst.code == "who5" and result.low:
        kinds.append((SignalKind.who5_poor, result.score))
    if inst.code == "family" and result.flags:
        kinds.append((SignalKind.family_worries, float(result.flags)))
    if result.help:
        kinds.append((SignalKind.help_request, None))
    if result.critical:
        kinds.append((SignalKind.critical_answer, None))
    if kinds:
        session.add_all(
            SurveySignal(child_id=response.child_id, kind=k, response_id=response.id, value=v, observed_at=now)
            for k, v in kinds
        )
    return [k for k, _ in kinds]


# -- help alerts ------------------------------------------------------------------


def current_class_id(session: Session, child_id: int):
    return select(Enrolment.class_id).where(
        Enrolment.child_id == child_id, Enrolment.school_year_id == current_year_id_subquery()
    ).scalar_subquery()


def raise_alert(
    session: Session, child_id: int, school_id: int | None, reason: AlertReason, now: datetime, *, response_id: int | None = None
) -> HelpAlert:
    """Create a help alert and tell the homeroom teacher and the counsellors at once."""
    row = session.execute(
        select(SchoolClass.id, SchoolClass.school_id).where(SchoolClass.id == current_class_id(session, child_id))
    ).first()
    class_id = row[0] if row else None
    school_id = school_id or (row[1] if row else None)
    if school_id is None:
        raise AnswerError(_l("You are not in a class this year, so we could not send your message. Please tell an adult at school."))
    alert = HelpAlert(child_id=child_id, school_id=school_id, class_id=class_id, response_id=response_id, reason=reason, created_at=now)
    session.add(alert)
    session.flush()
    notify.alert_created(notify.alert_recipients(session, school_id, class_id), alert)
    return alert


def talk_request(session: Session, principal: Principal, now: datetime) -> HelpAlert:
    """The student pressed "I want to talk to someone" outside a check-in.

    A child asking for help always reaches an adult, whatever the survey
    consent: the alert holds no answers, only that the child asked. The
    help-request signal screening reads is stored only with
    ``wellbeing_survey`` consent.
    """
    if principal.role != "student":
        raise AnswerError(_l("Only a student can ask for a talk here."))
    recent = session.scalar(
        select(HelpAlert).where(
            HelpAlert.child_id == principal.id,
            HelpAlert.acknowledged_at.is_(None),
            HelpAlert.reason == AlertReason.talk_request,
            HelpAlert.created_at > now - timedelta(hours=12),
        ).limit(1)
    )
    if recent is not None:
        return recent  # already asked today: the adults know; do not flood them
    alert = raise_alert(session, principal.id, None, AlertReason.talk_request, now)
    if is_consented_child(session, principal.id, PURPOSE):
        session.add(SurveySignal(child_id=principal.id, kind=SignalKind.help_request, observed_at=now))
    session.flush()
    return alert


def who_to_expect(session: Session, child_id: int) -> dict:
    """Whom the child should expect: the homeroom teacher's name, and whether a counsellor is there."""
    row = session.execute(
        select(Staff.name, SchoolClass.school_id)
        .select_from(SchoolClass)
        .outerjoin(Staff, Staff.id == SchoolClass.homeroom_teacher_id)
        .where(SchoolClass.id == current_class_id(session, child_id))
    ).first()
    teacher = row[0].split(" ")[0] if row and row[0] else None
    counsellor = bool(row) and bool(notify.alert_recipients(session, row[1], None))
    return {"teacher": teacher, "counsellor": counsellor}


def alerts_for(session: Session, principal: Principal, *, include_done: bool = False, limit: int = 200) -> list[HelpAlert]:
    """Help alerts about the children this principal may see, open first; audited as reads.

    The child and the acknowledging staff member come in the same query, and
    the audit rows in one statement, so the page costs the same for one alert
    or two hundred.
    """
    q = (
        select(HelpAlert)
        .options(joinedload(HelpAlert.child), joinedload(HelpAlert.acknowledged_by))
        .where(HelpAlert.child_id.in_(visible_child_ids(principal)))
    )
    if not include_done:
        q = q.where(HelpAlert.acknowledged_at.is_(None))
    rows = list(session.scalars(q.order_by(HelpAlert.acknowledged_at.is_not(None), HelpAlert.created_at.desc()).limit(limit)))
    audit.record_child_reads(session, principal, [a.child_id for a in rows], "surveys.alerts", purpose=PURPOSE)
    return rows


def acknowledge(session: Session, principal: Principal, alert_id: int, note: str, now: datetime) -> HelpAlert:
    alert = session.get(HelpAlert, alert_id)
    if alert is None or not can_see_child(session, principal, alert.child_id):
        raise LookupError(alert_id)
    note = (note or "").strip()
    if len(note) < 3:
        raise AnswerError(_l("Please write what you did or will do (at least a few words)."))
    if len(note) > 2000:
        raise AnswerError(_l("Please keep the note under 2000 characters."))
    # One acknowledgement: the UPDATE matches only an alert nobody has acknowledged yet.
    if alert.acknowledged_at is not None or not once.claim(
        session, HelpAlert, alert.id, HelpAlert.acknowledged_at.is_(None),
        acknowledged_at=now, acknowledged_by_staff_id=principal.id, ack_note=note,
    ):
        raise AnswerError(_l("This alert was already acknowledged."))
    audit.record(session, principal, "surveys.alert_acknowledged", child_id=alert.child_id, purpose=PURPOSE, detail={"alert_id": alert.id})
    session.flush()
    return alert


def escalate_due(session: Session, now: datetime, after: timedelta) -> int:
    """Tell the school leads about alerts nobody acknowledged within ``after``."""
    due = list(
        session.scalars(
            select(HelpAlert).where(
                HelpAlert.acknowledged_at.is_(None),
                HelpAlert.escalated_at.is_(None),
                HelpAlert.created_at <= now - after,
            )
        )
    )
    for alert in due:
        alert.escalated_at = now
        notify.alert_escalated(notify.school_leads(session, alert.school_id), alert)
    session.flush()
    return len(due)


# -- staff reading -------------------------------------------------------------------


def classes_for(session: Session, principal: Principal) -> list[SchoolClass]:
    """Classes whose check-ins this principal may follow (teacher: own homerooms)."""
    q = select(SchoolClass).where(SchoolClass.school_year_id == current_year_id_subquery())
    if principal.role == Role.teacher.value:
        q = q.where(SchoolClass.homeroom_teacher_id == principal.id)
    else:
        q = q.where(SchoolClass.id.in_(select(Enrolment.class_id).where(Enrolment.child_id.in_(visible_child_ids(principal)))))
    return list(session.scalars(q.order_by(SchoolClass.school_id, SchoolClass.grade, SchoolClass.name)))


@dataclass
class TodayRow:
    child: Child
    attendance_no: int | None
    status: str  # answered / waiting / missed / none (no check-in today: no consent or none scheduled)
    score: float | None
    low: bool
    help: bool
    signals: int


def class_today(session: Session, principal: Principal, class_id: int, now: datetime) -> list[TodayRow]:
    """Who in the class has answered today's mood check-in (one query plus one for signals)."""
    from surveys.scheduling import TOKYO

    today = now.astimezone(TOKYO).date()
    visible = visible_child_ids(principal)
    rows = session.execute(reads.class_mood_today(class_id, today, visible)).all()
    since = now - timedelta(days=14)
    counts = dict(session.execute(reads.signal_counts([r[0].id for r in rows], since)).all()) if rows else {}
    out = []
    for child, no, status, score, low, help_ in rows:
        st = {AssignmentStatus.submitted: "answered", AssignmentStatus.open: "waiting", AssignmentStatus.missed: "missed"}.get(status, "none")
        out.append(TodayRow(child, no, st, score, bool(low), bool(help_), counts.get(child.id, 0)))
    # The page names every child of the class (the roster with today's status): each is a read.
    audit.record_child_reads(session, principal, [r.child.id for r in out], "surveys.class_today", purpose=PURPOSE)
    return out


@dataclass
class TrendPoint:
    at: datetime
    score: float
    low: bool


@dataclass
class ChildAnswers:
    child: Child
    responses: list[SurveyResponse]
    trends: dict[str, list[TrendPoint]]
    free_text_visible: bool
    signals: list[SurveySignal]


def child_answers(session: Session, principal: Principal, child_id: int, now: datetime, *, weeks: int = 8) -> ChildAnswers | None:
    """A child's answers over the last weeks, for staff who may see the child; audited."""
    child = session.get(Child, child_id)
    if child is None or not can_see_child(session, principal, child_id):
        return None
    since = now - timedelta(weeks=weeks)
    responses = list(session.scalars(reads.child_responses(child_id, since)))
    trends: dict[str, list[TrendPoint]] = {}
    for r in responses:
        if r.score is not None and r.instrument_code in ("mood", "who5"):
            trends.setdefault(r.instrument_code, []).append(TrendPoint(r.submitted_at, r.score, r.low))
    signals = list(session.scalars(reads.child_signals(child_id, since)))
    audit.record_child_read(session, principal, child_id, "surveys.child_answers", purpose=PURPOSE)
    return ChildAnswers(child, list(reversed(responses)), trends, principal.role in FREE_TEXT_ROLES, signals)


def free_text_of(response: SurveyResponse) -> dict[str, str]:
    if not response.free_text:
        return {}
    try:
        return json.loads(response.free_text)
    except ValueError:
        return {}


# -- for screening and consent -----------------------------------------------------------


def signals_for_screening(at: datetime | None = None, since: datetime | None = None) -> Select:
    """A SELECT of (child_id, kind, value, observed_at) for children with survey consent.

    Screening joins this; nothing is returned for a child without effective
    ``wellbeing_survey`` consent.
    """
    q = select(SurveySignal.child_id, SurveySignal.kind, SurveySignal.value, SurveySignal.observed_at).where(
        SurveySignal.child_id.in_(consented_child_ids(PURPOSE, at=at))
    )
    if since is not None:
        q = q.where(SurveySignal.observed_at >= since)
    return q


def scores_for_screening(at: datetime | None = None, since: datetime | None = None) -> Select:
    """A SELECT of (child_id, instrument_code, score, low, submitted_at) through the gate."""
    q = select(
        SurveyResponse.child_id, SurveyResponse.instrument_code, SurveyResponse.score, SurveyResponse.low, SurveyResponse.submitted_at
    ).where(SurveyResponse.child_id.in_(consented_child_ids(PURPOSE, at=at)), SurveyResponse.score.is_not(None))
    if since is not None:
        q = q.where(SurveyResponse.submitted_at >= since)
    return q


def purge_children(session: Session, child_ids: list[int]) -> dict[str, int]:
    """Consent withdrawn or lapsed: delete what surveys hold *for the purpose* (set-based).

    A child's request for help (:class:`HelpAlert`) is not consent-based
    processing: it reaches an adult whatever the consent, so no consent event
    deletes it or its acknowledgement. It only loses its link to the check-in
    answers, which are consent-based and go.
    """
    if not child_ids:
        return {}
    counts = {}
    session.execute(
        update(HelpAlert)
        .where(HelpAlert.child_id.in_(child_ids), HelpAlert.response_id.is_not(None))
        .values(response_id=None)
    )
    for model, key in (
        (SurveySignal, "survey_signals"),
        (SurveyResponse, "survey_responses"),
        (SurveyAssignment, "survey_assignments"),
    ):
        res = session.execute(delete(model).where(model.child_id.in_(child_ids)).execution_options(synchronize_session=False))
        counts[key] = res.rowcount or 0
    session.flush()
    return counts


def _help_items(instrument_code: str) -> frozenset[str]:
    """Ids of the items through which a child asks for help ("I want to talk to someone")."""
    try:
        inst = instruments.get(instrument_code)
    except KeyError:
        return frozenset()
    return frozenset(i.id for i in inst.items if any(o.help for o in i.options))


def _response_row(r: SurveyResponse, *, for_child: bool = False) -> dict:
    """One answer set for the disclosure (開示).

    For the child's own check-ins (``for_child``), what the family does not
    get unless the data steward releases it (APPI art. 78(1)(i)): the answer
    to the "I want to talk to someone" item, left out of *every* row whatever
    it was (a row reads the same with or without a request for help), and
    the child's written note, which the check-in promises only the counsellor
    reads. The true values travel in ``RELEASED_VALUES`` (the full answers only
    when one of them asked for help: nothing else is held back).
    """
    answers = dict(r.answers or {})
    free_text = json.dumps(free_text_of(r), ensure_ascii=False) if r.free_text else None
    row = {
        "instrument": r.instrument_code,
        "version": r.instrument_version,
        "submitted_at": r.submitted_at.isoformat(),
        "answers": json.dumps(answers, ensure_ascii=False, sort_keys=True),
        "free_text": free_text,
        "score": r.score,
        "below_threshold": r.low,
    }
    if for_child:
        shown = {k: v for k, v in answers.items() if k not in _help_items(r.instrument_code)}
        released = {}
        row["answers"] = json.dumps(shown, ensure_ascii=False, sort_keys=True)
        if shown != answers and (r.help_requested or r.critical):  # it asked for help: the steward may release it
            released["answers"] = json.dumps(answers, ensure_ascii=False, sort_keys=True)
        if free_text is not None:
            row["free_text"] = None
            released["free_text"] = free_text
        if released:
            row[consent_hooks.RELEASED_VALUES] = released
    return row


def disclosure_checkins(session: Session, child_id: int) -> list[dict]:
    """For a disclosure (開示): the child's own check-ins, help requests and the signals derived from them.

    No staff names: an acknowledged help request shows when, not by whom. A
    child's request for help (the alert, its signals, the answer that asked)
    and the child's written notes are marked withheld: the download goes to
    the family, who may be what the child asked for help about (APPI art.
    78(1)(i), for a municipality: disclosure to a minor's legal
    representative that may harm the child). The data steward can release
    them for one request; the counsellor reads them on the child's page.
    """
    rows = [
        {"record": "answer", **_response_row(r, for_child=True)}
        for r in session.scalars(
            select(SurveyResponse)
            .where(SurveyResponse.child_id == child_id, SurveyResponse.respondent_kind == "student")
            .order_by(SurveyResponse.submitted_at, SurveyResponse.id)
        )
    ]
    rows += [
        {
            "record": "help_request",
            "submitted_at": a.created_at.isoformat(),
            "reason": a.reason.value,
            "acknowledged_at": a.acknowledged_at.isoformat() if a.acknowledged_at else None,
            consent_hooks.WITHHELD: True,
        }
        for a in session.scalars(select(HelpAlert).where(HelpAlert.child_id == child_id).order_by(HelpAlert.created_at))
    ]
    rows += [
        {
            "record": "signal", "kind": sig.kind.value, "value": sig.value, "observed_at": sig.observed_at.isoformat(),
            **({consent_hooks.WITHHELD: True} if sig.kind in HELP_SIGNALS else {}),
        }
        for sig in session.scalars(
            select(SurveySignal).where(SurveySignal.child_id == child_id).order_by(SurveySignal.observed_at, SurveySignal.id)
        )
    ]
    return rows


# Signals that exist only because a child asked for help or answered critically (an alert was raised).
HELP_SIGNALS = (SignalKind.help_request, SignalKind.critical_answer)


def withheld_audit(action: str, detail: dict) -> bool:
    """Audit rows that show staff reading or answering a child's request for help (kept out of a disclosure)."""
    return action == "surveys.alert_acknowledged" or (action == "child.read" and detail.get("view") == "surveys.alerts")


def disclosure_family(session: Session, child_id: int) -> list[dict]:
    """For a disclosure (開示): the family questionnaires a guardian answered about the child."""
    return [
        _response_row(r)
        for r in session.scalars(
            select(SurveyResponse)
            .where(SurveyResponse.child_id == child_id, SurveyResponse.respondent_kind == "guardian")
            .order_by(SurveyResponse.submitted_at, SurveyResponse.id)
        )
    ]


def file_register_entries() -> list[dict]:
    """The survey files for the personal-information file register (個人情報ファイル簿)."""
    return [
        {
            "name": "児童生徒の心と体のチェックイン（こころの天気・WHO-5）",
            "purpose_code": PURPOSE,
            "items": ["児童生徒番号", "回答日時", "回答（選択肢）", "自由記述（暗号化）", "得点", "継続的な低調などの兆候"],
            "source": "本人（学校の端末・自宅の端末から回答）",
            "retention": f"回答から3年。同意の撤回で直ちに削除。同意が失効したときは{LAPSE_WINDOW_DAYS}日後に削除",
        },
        {
            # Not consent-based: a child's request for help always reaches an adult.
            "name": "児童生徒からの相談の依頼（「だれかと話したい」）と対応の記録",
            "purpose_code": None,
            "items": ["児童生徒番号", "学級", "依頼の日時と理由（相談の依頼・深刻な回答）", "対応の日時と記録（暗号化）", "管理職への連絡の日時"],
            "source": "本人（チェックイン・「だれかと話したい」ボタン）、対応した教職員",
            "retention": "同意の撤回・失効では削除しない（保護者への開示からは除く：個人情報保護法第78条第1項第1号）",
        },
        {
            "name": "家庭環境アンケート",
            "purpose_code": PURPOSE,
            "items": ["児童生徒番号", "回答日時", "世帯の状況", "困りごと（家計・介護など）", "希望する支援", "自由記述（暗号化）"],
            "source": "保護者（ポータルから回答）",
            "retention": f"回答から3年。同意の撤回で直ちに削除。同意が失効したときは{LAPSE_WINDOW_DAYS}日後に削除",
        },
    ]


def closed_days_list(session: Session, school_id: int, start, end) -> list[ClosedDay]:
    return list(session.scalars(select(ClosedDay).where(ClosedDay.school_id == school_id, ClosedDay.day.between(start, end)).order_by(ClosedDay.day)))


def people_grade(session: Session, child_id: int) -> int | None:
    from portal.people.service import grade_of

    return grade_of(session, child_id)


def now() -> datetime:
    return utcnow()
