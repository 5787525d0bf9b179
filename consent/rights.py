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
from portal.audit.models import AuditEvent
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


# The one sentence every disclosure carries about what it may leave out. It names no
# category and never varies, so a disclosure reads the same whether or not something
# was withheld (neither confirming nor denying, in the spirit of APPI art. 81).
WITHHELD_NOTICE = _l(
    "Information whose disclosure to a legal representative could harm the child may be left out of "
    "this disclosure (Act on the Protection of Personal Information, art. 78(1)(i)). "
    "Every disclosure carries this sentence, whether or not anything was left out."
)


def _staff_actions_on_child(session: Session, child_id: int):
    return session.execute(
        select(AuditEvent.role, AuditEvent.at, AuditEvent.action, AuditEvent.detail)
        .where(AuditEvent.child_id == child_id, AuditEvent.actor_kind == "staff")
        .order_by(AuditEvent.at.desc())
    ).all()


def access_log_by_role_and_date(session: Session, child_id: int, *, release_withheld: bool = False) -> list[dict]:
    """Who looked at the record: role, date (Tokyo) and count; never a name.

    Actions that would reveal a withheld record (the staff reading a child's
    request for help) are left out unless the data steward released them.
    """
    counts: Counter = Counter()
    for role, at, action, detail in _staff_actions_on_child(session, child_id):
        if not release_withheld and hooks.audit_row_withheld(action, detail):
            continue
        counts[(at.astimezone(TOKYO).date(), role)] += 1
    return [
        {"date": d.isoformat(), "role": role, "count": n}
        for (d, role), n in sorted(counts.items(), key=lambda kv: (kv[0][0], kv[0][1]), reverse=True)
    ]


def _family_rows(rows: list[dict], release_withheld: bool) -> tuple[list[dict], int]:
    """A section's rows as the family gets them, and how many rows or values were held back."""
    out, held = [], 0
    for row in rows:
        row = dict(row)
        withheld = bool(row.pop(hooks.WITHHELD, False))
        released = row.pop(hooks.RELEASED_VALUES, None) or {}
        if withheld or released:
            held += 1
        if withheld and not release_withheld:
            continue
        if release_withheld:
            row.update(released)
        out.append(row)
    return out, held


@dataclass
class WithheldCount:
    title: str
    count: int


def withheld_summary(session: Session, child_id: int) -> list[WithheldCount]:
    """For the data steward only: what a disclosure of this child leaves out, by section (counts)."""
    out = []
    for section in hooks.disclosure_sections():
        _rows, held = _family_rows(section.fn(session, child_id), False)
        if held:
            out.append(WithheldCount(str(section.title), held))
    held = sum(1 for _r, _a, action, detail in _staff_actions_on_child(session, child_id)
               if hooks.audit_row_withheld(action, detail))
    if held:
        out.append(WithheldCount(str(_l("Who looked at the record")), held))
    return out


def release_withheld(session: Session, actor: Principal, req: DataRequest) -> DataRequest:
    """The data steward releases what a disclosure withholds, for this one request (audited).

    A single steward decides (no second approval): the law leaves withholding
    to the controller's judgement, and releasing gives the family more, never less.
    """
    if actor.role != Role.data_steward.value:
        raise service.NotAllowed()
    if req.kind != RequestKind.disclosure:
        raise service.ConsentError(_l("Only a disclosure request has anything to release."))
    # One guarded statement: of two concurrent releases one matches the row, the other nothing.
    if not once.claim(session, DataRequest, req.id, DataRequest.withheld_released_at.is_(None),
                      withheld_released_at=utcnow(), withheld_released_by_staff_id=actor.id):
        session.expire(req)
        raise service.AlreadyRecorded(_l("This was already released."))
    session.flush()
    held = sum(w.count for w in withheld_summary(session, req.child_id))
    audit.record(
        session, actor, "consent.disclosure_released", child_id=req.child_id,
        detail={"request_id": req.id, "items": held},
    )
    return req


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


def disclosure(session: Session, actor: Principal, child_id: int, *, release_withheld: bool = False) -> dict:
    """Everything held about a child that the family may have, as plain JSON values.

    A child's request for help, and whatever would reveal one, is left out
    (APPI art. 78(1)(i)) unless the data steward released it for the request
    (``release_withheld``); ``withheld_notice`` is the same sentence either
    way. A staff read is audited.
    """
    child = session.get(Child, child_id)
    if actor.kind == "staff":
        audit.record_child_read(session, actor, child_id, "consent.disclosure", purpose="disclosure")
    cls = current_class_of(session, child_id)
    sections = []
    for section in hooks.disclosure_sections():
        rows, _held = _family_rows(section.fn(session, child_id), release_withheld)
        sections.append({"key": section.key, "title": str(section.title), "rows": rows})
    return {
        "generated_at": utcnow().isoformat(),
        "withheld_notice": str(WITHHELD_NOTICE),
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
        "access_log": access_log_by_role_and_date(session, child_id, release_withheld=release_withheld),
    }


def event_for_child(session: Session, child_id: int, event_id: int) -> ConsentEvent | None:
    return session.scalar(select(ConsentEvent).where(ConsentEvent.id == event_id, ConsentEvent.child_id == child_id))
