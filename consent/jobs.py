"""Scheduled jobs of the consent domain."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from consent.service import run_due_purges


def run_purges(session: Session, now: datetime) -> None:
    """Delete data whose retention window after a withdrawal has ended."""
    run_due_purges(session, now)
