"""Scheduler jobs of the surveys domain: each takes (session, now)."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy.orm import Session

from surveys import scheduling, service


def tick(session: Session, now: datetime) -> dict[str, int]:
    """Close ended assignments, open due ones, send reminders."""
    return scheduling.tick(session, now)


def escalate(session: Session, now: datetime) -> int:
    """Escalate help alerts unacknowledged for SURVEYS_ALERT_ESCALATE_MINUTES to the school lead."""
    minutes = int(current_app.config.get("SURVEYS_ALERT_ESCALATE_MINUTES", 60))
    return service.escalate_due(session, now, timedelta(minutes=minutes))
