"""The data steward's view of the audit log: searching it and checking the chain.

Both are themselves audited: looking at the log is a read of who did what to
which child, and a chain check leaves its result in the chain.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.audit import service
from portal.audit.models import AuditEvent
from portal.auth.principal import Principal
from portal.i18n import TOKYO


@dataclass(frozen=True)
class Filters:
    action: str | None = None
    role: str | None = None
    child_id: int | None = None
    actor_id: int | None = None
    since: date | None = None  # first day, Asia/Tokyo
    until: date | None = None  # last day included, Asia/Tokyo

    def as_detail(self) -> dict:
        return {k: (v.isoformat() if isinstance(v, date) else v) for k, v in self.__dict__.items() if v is not None}


def day_start(day: date) -> datetime:
    """Midnight of a Tokyo calendar day, as an aware datetime."""
    return datetime.combine(day, time(0), tzinfo=TOKYO)


def search(
    session: Session, principal: Principal, filters: Filters, *, page: int = 1, per_page: int = 50,
    request_id: str | None = None,
) -> tuple[list[AuditEvent], int]:
    """One page of matching events (newest first) and the total; the search is recorded."""
    rows, total = service.search(
        session,
        action=filters.action,
        role=filters.role,
        child_id=filters.child_id,
        actor_id=filters.actor_id,
        since=day_start(filters.since) if filters.since else None,
        until=day_start(filters.until + timedelta(days=1)) if filters.until else None,
        limit=per_page,
        offset=(max(page, 1) - 1) * per_page,
    )
    service.record(
        session, principal, "audit.searched",
        detail={"filters": filters.as_detail(), "page": page, "results": total}, request_id=request_id,
    )
    # Detached: audit rows are read-only, and the caller's commit must not
    # expire them (the page would then reload each row with a query of its own).
    for row in rows:
        session.expunge(row)
    return rows, total


def known_actions(session: Session) -> list[str]:
    return list(session.scalars(select(AuditEvent.action).distinct().order_by(AuditEvent.action)))


def verify_chain(session: Session, principal: Principal, *, request_id: str | None = None) -> service.VerifyResult:
    """Check the whole chain, then record that it was checked and what was found."""
    result = service.verify(session)
    service.record(
        session, principal, "audit.verified",
        detail={"ok": result.ok, "checked": result.checked, "first_broken_id": result.first_broken_id,
                "problems": len(result.findings), "covered": result.covered},
        request_id=request_id,
    )
    return result
