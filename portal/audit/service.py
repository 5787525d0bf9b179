"""Writing and verifying the audit log.

Every staff read of a child's record calls :func:`record` (usually through
:func:`record_child_read`) in the same transaction as the read's page, so a
page that renders has always left its row.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session

from portal.audit.models import AuditEvent
from portal.auth.principal import Principal
from portal.orm import utcnow

GENESIS = "0" * 64


def _canonical_row(row) -> bytes:
    """The hashed content of a row, from anything with the columns as keys (a dict, a mapping row)."""
    body = {
        "at": row["at"].isoformat(timespec="microseconds"),
        "actor_kind": row["actor_kind"],
        "actor_id": row["actor_id"],
        "role": row["role"],
        "action": row["action"],
        "child_id": row["child_id"],
        "purpose": row["purpose"],
        "detail": row["detail"] or {},
        "request_id": row["request_id"],
    }
    return json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def _canonical(ev: AuditEvent) -> bytes:
    return _canonical_row({c: getattr(ev, c) for c in _HASHED})


def _chain(prev_hash: str, content: bytes) -> str:
    return hashlib.sha256(prev_hash.encode() + b"\n" + content).hexdigest()


def compute_hash(prev_hash: str, ev: AuditEvent) -> str:
    return _chain(prev_hash, _canonical(ev))


def _lock_chain(session: Session) -> None:
    """Serialise appends so the chain stays linear under concurrent writers."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(7240001)"))


def record(
    session: Session,
    actor: Principal,
    action: str,
    *,
    child_id: int | None = None,
    purpose: str | None = None,
    detail: dict | None = None,
    request_id: str | None = None,
    at: datetime | None = None,
) -> AuditEvent:
    _lock_chain(session)
    last = session.execute(
        select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)
    ).scalar_one_or_none()
    ev = AuditEvent(
        at=at or utcnow(),
        actor_kind=actor.kind,
        actor_id=actor.id if actor.kind != "system" else None,
        role=actor.role,
        action=action,
        child_id=child_id,
        purpose=purpose,
        detail=detail or {},
        request_id=request_id,
        prev_hash=last or GENESIS,
    )
    ev.hash = compute_hash(ev.prev_hash, ev)
    session.add(ev)
    session.flush()
    return ev


def record_child_read(
    session: Session,
    actor: Principal,
    child_id: int,
    what: str,
    *,
    purpose: str | None = None,
    request_id: str | None = None,
) -> AuditEvent:
    """A staff member looked at a child's record (``what`` names the view)."""
    return record(
        session,
        actor,
        "child.read",
        child_id=child_id,
        purpose=purpose,
        detail={"view": what},
        request_id=request_id,
    )


def record_child_reads(
    session: Session,
    actor: Principal,
    child_ids,
    what: str,
    *,
    purpose: str | None = None,
    request_id: str | None = None,
) -> int:
    """One audited read per child, for pages about many children at once.

    The rows are chained in Python and written in one executemany, so a list
    of a thousand children costs a fixed number of statements.
    """
    ids = list(dict.fromkeys(child_ids))
    if not ids:
        return 0
    _lock_chain(session)
    last = session.execute(
        select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)
    ).scalar_one_or_none() or GENESIS
    common = {
        "at": utcnow(),
        "actor_kind": actor.kind,
        "actor_id": actor.id if actor.kind != "system" else None,
        "role": actor.role,
        "action": "child.read",
        "purpose": purpose,
        "request_id": request_id,
    }
    rows = []
    for cid in ids:
        # Plain rows, not ORM objects: the same canonical content and chain as
        # record() (compute_hash), at a fraction of the cost for a long list.
        row = {**common, "child_id": cid, "detail": {"view": what}, "prev_hash": last}
        row["hash"] = last = _chain(last, _canonical_row(row))
        rows.append(row)
    session.execute(insert(AuditEvent.__table__), rows)  # Core executemany, in chain order
    return len(rows)


_HASHED = ("at", "actor_kind", "actor_id", "role", "action", "child_id", "purpose", "detail", "request_id")


@dataclass
class VerifyResult:
    ok: bool
    checked: int
    first_broken_id: int | None = None
    reason: str | None = None


def verify(session: Session, batch: int = 5000) -> VerifyResult:
    """Walk the chain in id order; report the first row whose link is broken."""
    prev = GENESIS
    checked = 0
    last_id = 0
    while True:
        rows = session.scalars(
            select(AuditEvent).where(AuditEvent.id > last_id).order_by(AuditEvent.id).limit(batch)
        ).all()
        if not rows:
            break
        for ev in rows:
            if ev.prev_hash != prev:
                return VerifyResult(False, checked, ev.id, "previous hash does not match (a row was removed or reordered)")
            if compute_hash(prev, ev) != ev.hash:
                return VerifyResult(False, checked, ev.id, "row content does not match its hash (a row was altered)")
            prev = ev.hash
            checked += 1
            last_id = ev.id
        session.expunge_all()
    return VerifyResult(True, checked)


def search(
    session: Session,
    *,
    action: str | None = None,
    child_id: int | None = None,
    role: str | None = None,
    actor_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[AuditEvent], int]:
    q = select(AuditEvent)
    if action:
        q = q.where(AuditEvent.action == action)
    if child_id:
        q = q.where(AuditEvent.child_id == child_id)
    if role:
        q = q.where(AuditEvent.role == role)
    if actor_id:
        q = q.where(AuditEvent.actor_id == actor_id)
    if since:
        q = q.where(AuditEvent.at >= since)
    if until:
        q = q.where(AuditEvent.at < until)
    total = session.scalar(select(func.count()).select_from(q.subquery()))
    rows = session.scalars(q.order_by(AuditEvent.id.desc()).limit(limit).offset(offset)).all()
    return list(rows), int(total or 0)


def reads_of_child(session: Session, child_id: int) -> list[tuple[str, datetime]]:
    """Who looked at a child's record, by role and time (never staff names)."""
    rows = session.execute(
        select(AuditEvent.role, AuditEvent.at)
        .where(AuditEvent.child_id == child_id, AuditEvent.actor_kind == "staff")
        .order_by(AuditEvent.at.desc())
    ).all()
    return [(r.role, r.at) for r in rows]
