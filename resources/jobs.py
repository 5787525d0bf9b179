"""The campaign job, for the scheduler and the CLI."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from resources.campaigns import send_due_campaigns


def send_due(session: Session, now: datetime) -> dict[str, int]:
    """Scheduler job ``(session, now)``: queue due campaigns, send queued e-mails.

    It commits after each claim and each e-mail (at most once per family: a
    crash never sends a message twice); the runner commits the rest.
    """
    return send_due_campaigns(session, now, checkpoint=session.commit)


def send_due_campaigns_job(now: datetime | None = None) -> dict[str, int]:
    """The same, for ``flask resources send-due`` (one call, committed)."""
    from portal.extensions import db
    from portal.orm import utcnow

    session = db.session
    try:
        result = send_due(session, now or utcnow())
        session.commit()
        return result
    except Exception:
        session.rollback()
        raise
