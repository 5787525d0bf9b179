"""Data rights (開示・訂正・利用停止): requests, the steward's answers, the disclosure."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from consent import hooks, service
from consent.models import (
    Action,
    Channel,
    ConsentEvent,
    ConsentPurpose,
    DataRequest,
    Party,
    RequestKind,
    RequestStatus,
)
from portal import once
from portal.audit import service as audit
from portal.audit.service import reads_of_child
from portal.auth.principal import Principal
from portal.i18n import TOKYO
from portal.orm import utcnow
from portal.people.models import Child, Role
from portal.people.service import current_class_of

DEADLINE_DAYS = 30


class DuplicateRequest(service.ConsentError):
    code = "duplicate"
    default = _l("You already have an open request of this kind for this child. We will answer it first.")


def today_tokyo() -> date:
    return datetime.now(TOKYO).date()


def create_request(
    session: Session,
    actor: Principal,
    child_id: int,
    kind: RequestKind,
    *,
    purpose_code: str | None = None,
    details: str = "",
) -> DataRequest:
    kind = RequestKind(kind)
    if actor.kind != "guardian" or not service.is_guardian_of(session, actor.id, child_id):
        raise service.NotAllowed()
    purpose = None
    if purpose_code:
        purpose = service.purpose_by_code(session, purpose_code)
        if purpose is None:
            raise service.ConsentError(_l("Choose a purpose from the list."))
    if kind == RequestKind.stop_use and purpose is None:
        raise service.ConsentError(_l("Choose the purpose whose use should stop."))
    if kind == RequestKind.correction and not details.strip():
        raise service.ConsentError(_l("Tell us what is wrong and what it should say."))
    once.lock(session, Child, child_id)  # a double-submitted form makes one request: the second sees the first
    open_same = session.scalar(
        select(DataRequest.id).where(
            DataRequest.child_id == child_id,
            DataRequest.kind == kind,
            DataRequest.status == RequestStatus.open,
            DataRequest.purpose_id.is_(None) if purpose is None else DataRequest.purpose_id == purpose.id,
        )
    )
    if open_same is not None:
        raise DuplicateRequest()
    now = utcnow()
    req = DataRequest(
        child_id=child_id,
        guardian_id=actor.id,
        kind=kind,
        purpose_id=purpose.id if purpose else None,
        details=details.strip() or None,
        status=RequestStatus.open,
        received_at=now,
        due_on=now.astimezone(TOKYO).date() + timedelta(days=DEADLINE_DAYS),
    )
    session.add(req)
    session.flush()
    audit.record(session, actor, "consent.request", child_id=child_id, detail={"request_id": req.id, "kind": kind.value})
    return req


def requests_of_guardian(session: Session, guardian_id: int) -> list[DataRequest]:
    from portal.people.models import GuardianChild

    mine = select(GuardianChild.child_id).where(GuardianChild.guardian_id == guardian_id)
    return list(
        session.scalars(
            select(DataRequest)
            .where(DataRequest.child_id.in_(mine))
            .options(selectinload(DataRequest.purpose))
            .order_by(DataRequest.received_at.desc())
        )
    )


@dataclass
class RequestRow:
    request: DataRequest
    child: Child
    days_left: int

    @property
    def overdue(self) -> bool:
        return self.request.status == RequestStatus.open and self.days_left < 0


def request_queue(session: Session, *, status: RequestStatus | None = RequestStatus.open) -> list[RequestRow]:
    """Requests for the steward, oldest deadline first (one query)."""
    q = select(DataRequest, Child).join(Child, Child.id == DataRequest.child_id)
    if status is not None:
        q = q.where(DataRequest.status == status)
    today = today_tokyo()
    return [
        RequestRow(r, c, (r.due_on - today).days)
        for r, c in session.execute(q.order_by(DataRequest.due_on, DataRequest.id)).all()
    ]


def answer_request(
    session: Session, actor: Principal, req: DataRequest, *, status: RequestStatus, outcome: str
) -> DataRequest:
    """Record the steward's answer. A completed stop of use withdraws the guardian's consent."""
    if actor.role != Role.data_steward.value:
        raise service.NotAllowed()
    status = RequestStatus(status)
    if req.status != RequestStatus.open:
        raise service.AlreadyRecorded(_l("This request was already answered."))
    if status == RequestStatus.open:
        raise service.ConsentError(_l("Choose an outcome."))
    if not outcome.strip():
        raise service.ConsentError(_l("Write the outcome the family will read."))
    # One answer: the update that records it matches only a request still open (two stewards at once).
    if not once.claim(session, DataRequest, req.id, DataRequest.status == RequestStatus.open,
                      status=status, outcome=outcome.strip(), handled_by_staff_id=actor.id, closed_at=utcnow(),
                      disclosure_ready=status == RequestStatus.completed and req.kind == RequestKind.disclosure):
        raise service.AlreadyRecorded(_l("This request was already answered."))
    if status == RequestStatus.completed and req.kind == RequestKind.stop_use and req.purpose_id:
        purpose = session.get(ConsentPurpose, req.purpose_id)
        last = service.latest_event(session, req.child_id, purpose.id, Party.guardian)
        if last is not None and last.action == Action.grant:
            service.record_event(
                session, actor, req.child_id, purpose, Party.guardian, Action.withdraw, channel=Channel.data_request
            )
    session.flush()
    audit.record(
        session,
        actor,
        "consent.request_answered",
        child_id=req.child_id,
        detail={"request_id": req.id, "kind": req.kind.value, "status": status.value},
    )
    return req


# -- disclosure ---------------------------------------------------------------------------


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


def access_log_by_role_and_date(session: Session, child_id: int) -> list[dict]:
    """Who looked at the record: role, date (Tokyo) and count; never a name."""
    counts: Counter = Counter()
    for role, at in reads_of_child(session, child_id):
        counts[(at.astimezone(TOKYO).date(), role)] += 1
    return [
        {"date": d.isoformat(), "role": role, "count": n}
        for (d, role), n in sorted(counts.items(), key=lambda kv: (kv[0][0], kv[0][1]), reverse=True)
    ]


def consent_history_rows(session: Session, child_id: int) -> list[dict]:
    rows = []
    for ev in service.history(session, child_id):
        rows.append(
            {
                "event_id": ev.id,
                "purpose": ev.purpose.code,
                "party": ev.party.value,
                "action": ev.action.value,
                "version": ev.version,
                "locale": ev.locale,
                "document_sha256": ev.document.sha256,
                "at": _iso(ev.at),
                "recorded_at": _iso(ev.recorded_at),
                "channel": ev.channel.value,
                "form_no": ev.form_no,
            }
        )
    return rows


def disclosure(session: Session, actor: Principal, child_id: int) -> dict:
    """Everything held about a child, as plain JSON values. A staff read is audited."""
    child = session.get(Child, child_id)
    if actor.kind == "staff":
        audit.record_child_read(session, actor, child_id, "consent.disclosure", purpose="disclosure")
    cls = current_class_of(session, child_id)
    sections = []
    for section in hooks.disclosure_sections():
        sections.append({"key": section.key, "title": str(section.title), "rows": section.fn(session, child_id)})
    return {
        "generated_at": utcnow().isoformat(),
        "child": {
            "student_no": child.student_no,
            "name": child.name,
            "name_kana": child.name_kana,
            "birth_date": child.birth_date.isoformat(),
            "sex": child.sex,
            "address": child.address,
            "school": cls.school.name if cls else None,
            "grade": cls.grade if cls else None,
            "class": cls.name if cls else None,
        },
        "consent_history": consent_history_rows(session, child_id),
        "requests": [
            {"kind": r.kind.value, "status": r.status.value, "received_at": _iso(r.received_at), "due_on": _iso(r.due_on)}
            for r in session.scalars(select(DataRequest).where(DataRequest.child_id == child_id).order_by(DataRequest.id))
        ],
        "sections": sections,
        "access_log": access_log_by_role_and_date(session, child_id),
    }


def event_for_child(session: Session, child_id: int, event_id: int) -> ConsentEvent | None:
    return session.scalar(select(ConsentEvent).where(ConsentEvent.id == event_id, ConsentEvent.child_id == child_id))
