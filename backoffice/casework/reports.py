"""The case register (台帳), dashboards, the teacher's queue, the meeting PDF and CSV exports.

Every list here is a fixed number of queries whatever the number of cases
(tests count the statements).
"""

from __future__ import annotations

import io
import statistics
from dataclasses import dataclass, field
from datetime import date, datetime

from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backoffice.casework import labels
from backoffice.casework.models import (
    AWAITING_ASSESSMENT,
    OPEN_STATUSES,
    Case,
    CaseStatus,
    Meeting,
)
from backoffice.casework.service import (
    ALERT_QUEUE_READ,
    audit_reads,
    latest_assessments,
    tokyo_today,
    visible_case_ids,
)
from backoffice.casework.tasks import overdue_counts_by_case, overdue_counts_by_school, task_rows
from portal.auth.access import current_year_id_subquery, visible_child_ids, visible_school_ids
from portal.auth.principal import Principal
from portal.people.models import Child, Enrolment, School, SchoolClass, Staff

# -- the teacher's queue -----------------------------------------------------------------


@dataclass
class QueueItem:
    child_id: int
    child_name: str
    class_label: str
    urgency: int
    flagged_at: datetime
    reasons: list[str]
    flag_id: int | None = None
    case_id: int | None = None
    case_status: str | None = None
    alert_id: int | None = None
    alert_reason: str | None = None


def _class_label(grade: int | None, name: str | None) -> str:
    if grade is None:
        return ""
    g = grade if grade <= 6 else grade - 6
    return _("Grade %(grade)s class %(name)s", grade=g, name=name)


def _current_class():
    return (
        select(Enrolment.child_id, SchoolClass.grade, SchoolClass.name, SchoolClass.school_id)
        .join(SchoolClass, SchoolClass.id == Enrolment.class_id)
        .where(Enrolment.school_year_id == current_year_id_subquery())
        .subquery("cur")
    )


def queue(session: Session, principal: Principal, locale: str) -> tuple[list[QueueItem], list[QueueItem]]:
    """(flags and cases awaiting assessment, open help requests) for this person's children.

    Most urgent, then newest, first. Three queries whatever the number of flags.
    """
    from backoffice.casework import flags
    from surveys.models import HelpAlert

    cur = _current_class()
    flag_alias = flags.open_flags_entity(principal)
    open_case = (
        select(Case.id, Case.child_id, Case.status).where(Case.status.in_(OPEN_STATUSES)).subquery("oc")
    )
    rows = session.execute(
        select(flag_alias, Child.name, cur.c.grade, cur.c.name, open_case.c.id, open_case.c.status)
        .join(Child, Child.id == flag_alias.child_id)
        .outerjoin(cur, cur.c.child_id == Child.id)
        .outerjoin(open_case, open_case.c.child_id == Child.id)
    ).all()
    items: list[QueueItem] = []
    seen_cases: set[int] = set()
    for f, name, grade, cname, case_id, status in rows:
        if status is not None and status not in AWAITING_ASSESSMENT and status != CaseStatus.assessed:
            continue  # the school has decided already; the case page carries on
        items.append(QueueItem(f.child_id, name, _class_label(grade, cname), f.urgency or 0, f.created_at,
                               flags.describe(f, locale), flag_id=f.id, case_id=case_id,
                               case_status=status.value if status else None))
        if case_id:
            seen_cases.add(case_id)
    # Cases waiting for an assessment without an open flag (help requests, reopened, manual).
    case_rows = session.execute(
        select(Case, Child.name, cur.c.grade, cur.c.name)
        .join(Child, Child.id == Case.child_id)
        .outerjoin(cur, cur.c.child_id == Case.child_id)
        .where(Case.status.in_(AWAITING_ASSESSMENT), Case.id.in_(visible_case_ids(principal)))
    ).all()
    for c, name, grade, cname in case_rows:
        if c.id in seen_cases:
            continue
        items.append(QueueItem(c.child_id, name, _class_label(grade, cname), c.urgency, c.flagged_at,
                               [labels.label(labels.SOURCE, c.source)], case_id=c.id, case_status=c.status.value))
    items.sort(key=lambda i: (-i.urgency, -i.flagged_at.timestamp()))

    alert_rows = session.execute(
        select(HelpAlert, Child.name, cur.c.grade, cur.c.name, open_case.c.id)
        .join(Child, Child.id == HelpAlert.child_id)
        .outerjoin(cur, cur.c.child_id == Child.id)
        .outerjoin(open_case, open_case.c.child_id == Child.id)
        .where(HelpAlert.child_id.in_(visible_child_ids(principal)), HelpAlert.acknowledged_at.is_(None))
        .order_by(HelpAlert.created_at.desc())
        .limit(200)
    ).all()
    audit_reads(session, principal, [i.child_id for i in items], "casework.queue")
    # Reads of children's requests for help are audited apart, so a disclosure can withhold them.
    audit_reads(session, principal, [a.child_id for a, *_ in alert_rows], ALERT_QUEUE_READ)
    alerts = [
        QueueItem(a.child_id, name, _class_label(grade, cname), 3, a.created_at, [], alert_id=a.id,
                  alert_reason=a.reason.value, case_id=case_id)
        for a, name, grade, cname, case_id in alert_rows
    ]
    return items, alerts


# -- the register and the dashboards ------------------------------------------------------


@dataclass
class RegisterRow:
    case_id: int
    child_id: int
    student_no: str
    child_name: str
    class_label: str
    school_name: str
    status: str
    source: str
    flagged_at: datetime
    decided_at: datetime | None
    review_due: date | None
    next_due: date | None
    overdue: int
    teacher_name: str | None

    @property
    def days_to_decision(self) -> int | None:
        if self.decided_at is None:
            return None
        return max(0, (self.decided_at - self.flagged_at).days)


def register(session: Session, principal: Principal, *, school_id: int | None = None, status: str | None = None,
             today: date | None = None, include_closed: bool = True, audit_read: bool = True) -> list[RegisterRow]:
    """The case register of the schools this person sees (one query); each listed child's read is audited."""
    today = today or tokyo_today()
    cur = _current_class()
    ct = overdue_counts_by_case(today)
    q = (
        select(Case.id, Case.child_id, Child.student_no, Child.name, cur.c.grade, cur.c.name.label("cname"),
               School.name.label("school_name"), Case.status, Case.source, Case.flagged_at, Case.decided_at,
               Case.review_due, ct.c.next_due, ct.c.overdue, Staff.name.label("teacher_name"))
        .join(Child, Child.id == Case.child_id)
        .join(School, School.id == Case.school_id)
        .outerjoin(cur, cur.c.child_id == Case.child_id)
        .outerjoin(ct, ct.c.case_id == Case.id)
        .outerjoin(Staff, Staff.id == Case.teacher_id)
        .where(Case.id.in_(visible_case_ids(principal)))
    )
    if school_id is not None:
        q = q.where(Case.school_id == school_id)
    if status:
        q = q.where(Case.status == status)
    if not include_closed:
        q = q.where(Case.status != CaseStatus.closed)
    rows = session.execute(
        q.order_by((Case.status == CaseStatus.closed), cur.c.grade, cur.c.name, Child.name_kana, Case.id)
    ).all()
    class_labels: dict[tuple, str] = {}

    def class_label(grade, cname):
        key = (grade, cname)
        if key not in class_labels:
            class_labels[key] = _class_label(grade, cname)
        return class_labels[key]

    out = [
        RegisterRow(r.id, r.child_id, r.student_no, r.name, class_label(r.grade, r.cname), r.school_name,
                    r.status.value, r.source.value, r.flagged_at, r.decided_at, r.review_due, r.next_due,
                    int(r.overdue or 0), r.teacher_name)
        for r in rows
    ]
    if audit_read:
        audit_reads(session, principal, [r.child_id for r in out], "casework.register")
    return out


@dataclass
class Dashboard:
    by_status: dict[str, int] = field(default_factory=dict)
    open_cases: int = 0
    overdue_tasks: int = 0
    decided: int = 0
    median_days_to_decision: float | None = None
    mean_days_to_decision: float | None = None


def _days(pairs) -> list[int]:
    return [max(0, (d - f).days) for f, d in pairs if d is not None]


def dashboard(session: Session, principal: Principal, *, school_id: int | None = None,
              today: date | None = None) -> Dashboard:
    """Counts by status, overdue tasks, days from flag to decision: three queries."""
    today = today or tokyo_today()
    scope = Case.id.in_(visible_case_ids(principal))
    where = [scope] + ([Case.school_id == school_id] if school_id is not None else [])
    d = Dashboard(by_status={s.value: 0 for s in CaseStatus})
    for status, n in session.execute(select(Case.status, func.count()).where(*where).group_by(Case.status)):
        d.by_status[status.value] = n
    d.open_cases = sum(n for s, n in d.by_status.items() if s != CaseStatus.closed)
    t = task_rows().subquery("t")
    tq = select(func.count()).select_from(t).where(t.c.due_on < today, t.c.case_id.in_(visible_case_ids(principal)))
    if school_id is not None:
        tq = tq.where(t.c.school_id == school_id)
    d.overdue_tasks = int(session.scalar(tq) or 0)
    days = _days(session.execute(select(Case.flagged_at, Case.decided_at).where(*where, Case.decided_at.is_not(None))))
    d.decided = len(days)
    if days:
        d.median_days_to_decision = float(statistics.median(days))
        d.mean_days_to_decision = round(statistics.fmean(days), 1)
    return d


@dataclass
class SchoolRow:
    school_id: int
    school_name: str
    by_status: dict[str, int]
    open_cases: int
    overdue_tasks: int
    decided: int
    median_days_to_decision: float | None


def municipality(session: Session, principal: Principal, today: date | None = None) -> list[SchoolRow]:
    """Counts per school for the municipality (no child named): three queries."""
    today = today or tokyo_today()
    schools = session.execute(
        select(School.id, School.name).where(School.id.in_(visible_school_ids(principal))).order_by(School.code)
    ).all()
    counts: dict[int, dict[str, int]] = {sid: {s.value: 0 for s in CaseStatus} for sid, _ in schools}
    for sid, status, n in session.execute(
        select(Case.school_id, Case.status, func.count()).group_by(Case.school_id, Case.status)
    ):
        if sid in counts:
            counts[sid][status.value] = n
    overdue = overdue_counts_by_school(session, today)
    days: dict[int, list[int]] = {}
    for sid, f, d in session.execute(
        select(Case.school_id, Case.flagged_at, Case.decided_at).where(Case.decided_at.is_not(None))
    ):
        days.setdefault(sid, []).append(max(0, (d - f).days))
    out = []
    for sid, name in schools:
        c = counts[sid]
        ds = days.get(sid, [])
        out.append(SchoolRow(sid, name, c, sum(n for s, n in c.items() if s != CaseStatus.closed),
                             overdue.get(sid, 0), len(ds), float(statistics.median(ds)) if ds else None))
    return out


# -- CSV exports --------------------------------------------------------------------------


def register_csv(rows: list[RegisterRow]) -> tuple[list[str], list[list]]:
    header = [_("Case"), _("Student no."), _("Name"), _("Class"), _("School"), _("Status"), _("Case opened from"),
              _("Flagged on"), _("Decided on"), _("Days from flag to decision"), _("Review due"),
              _("Next due"), _("Overdue tasks")]
    body = [
        [r.case_id, r.student_no, r.child_name, r.class_label, r.school_name, labels.label(labels.STATUS, r.status),
         labels.label(labels.SOURCE, r.source), tokyo_today(r.flagged_at),
         tokyo_today(r.decided_at) if r.decided_at else None, r.days_to_decision, r.review_due, r.next_due,
         r.overdue]
        for r in rows
    ]
    return header, body


def municipality_csv(rows: list[SchoolRow]) -> tuple[list[str], list[list]]:
    statuses = list(CaseStatus)
    header = [_("School"), *[labels.label(labels.STATUS, s) for s in statuses], _("Open cases"),
              _("Overdue tasks"), _("Decided"), _("Median days from flag to decision")]
    body = [
        [r.school_name, *[r.by_status[s.value] for s in statuses], r.open_cases, r.overdue_tasks, r.decided,
         r.median_days_to_decision]
        for r in rows
    ]
    return header, body


# -- the meeting's case summary (PDF) -------------------------------------------------------


def meeting_pdf(session: Session, principal: Principal, meeting: Meeting, locale: str) -> bytes:
    """A summary of every case on a meeting's list, for the meeting (each child's read audited)."""
    from xml.sax.saxutils import escape

    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import (
        PageBreak,
        Paragraph,
        SimpleDocTemplate,
        Spacer,
        Table,
        TableStyle,
    )

    from backoffice.casework import flags
    from portal.people.pdf import GOTHIC, register_fonts

    register_fonts()
    base = ParagraphStyle("base", fontName=GOTHIC, fontSize=10, leading=14, wordWrap="CJK")
    h1 = ParagraphStyle("h1", parent=base, fontSize=15, leading=20, spaceAfter=6)
    h2 = ParagraphStyle("h2", parent=base, fontSize=12, leading=16, spaceBefore=6, spaceAfter=4)

    def p(text, style=base):
        return Paragraph(escape(str(text or "")).replace("\n", "<br/>"), style)

    cur = _current_class()
    case_ids = [i.case_id for i in meeting.items]
    rows = {c.id: (c, name, grade, cname) for c, name, grade, cname in session.execute(
        select(Case, Child.name, cur.c.grade, cur.c.name)
        .join(Child, Child.id == Case.child_id)
        .outerjoin(cur, cur.c.child_id == Case.child_id)
        .where(Case.id.in_(case_ids))
    )} if case_ids else {}
    flag_rows = flags.shown_many(session, [c.flag_id for c, *_ in rows.values()])
    attendees = [a.staff.name for a in meeting.attendees]

    with force_locale(locale):
        story = [
            p(_("Case meeting summary"), h1),
            p(f"{meeting.school.name}　{meeting.held_on.isoformat()}"),
            p(_("Attendees: %(names)s", names="、".join(attendees + ([meeting.other_attendees]
                                                                      if meeting.other_attendees else [])) or "-")),
            p(_("Confidential: for the school case meeting only. Do not copy.")),
            Spacer(1, 4 * mm),
        ]
        audit_reads(session, principal, [c.child_id for c, *_ in rows.values()], "casework.meeting_pdf")
        latest = latest_assessments(session, case_ids)
        for n, item in enumerate(meeting.items):
            if item.case_id not in rows:
                continue
            case, name, grade, cname = rows[item.case_id]
            if n:
                story.append(PageBreak())
            story.append(p(f"{name}（{_class_label(grade, cname)}）", h2))
            facts = [
                [p(_("Status")), p(labels.label(labels.STATUS, case.status))],
                [p(_("Case opened from")), p(labels.label(labels.SOURCE, case.source))],
                [p(_("Flagged on")), p(tokyo_today(case.flagged_at).isoformat())],
            ]
            flag = flag_rows.get(case.flag_id)
            if flag is not None:
                facts.append([p(_("Reasons")), p("\n".join(flags.describe(flag, locale)))])
            a = latest.get(case.id)
            if a is not None:
                facts.append([p(_("Proposal")), p(labels.label(labels.PROPOSAL, a.proposal)
                                                  + (f"（{a.review_date.isoformat()}）" if a.review_date else ""))])
                for d in ("attendance", "learning", "health", "relationships", "family_contact"):
                    note = getattr(a, f"{d}_note") or ""
                    facts.append([p(labels.label(labels.DOMAIN, d)),
                                  p(labels.label(labels.CONCERN, getattr(a, d)) + (f"：{note}" if note else ""))])
                if a.child_voice:
                    facts.append([p(_("The child's own words")), p(a.child_voice)])
                if a.notes:
                    facts.append([p(_("Notes")), p(a.notes)])
                if a.no_concern_reason:
                    facts.append([p(_("Why no concern")), p(a.no_concern_reason)])
            facts.append([p(_("School decision")), p(labels.label(labels.DECISION, item.decision) if item.decision else "")])
            table = Table(facts, colWidths=[40 * mm, 130 * mm])
            table.setStyle(TableStyle([
                ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("BACKGROUND", (0, 0), (0, -1), colors.HexColor("#eef2f0")),
            ]))
            story.append(table)
        if not meeting.items:
            story.append(p(_("No cases are listed for this meeting yet.")))

    buf = io.BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=A4, leftMargin=18 * mm, rightMargin=18 * mm, topMargin=18 * mm,
                            bottomMargin=18 * mm, title="Case meeting summary", author="Mimamori")
    doc.build(story)
    return buf.getvalue()
