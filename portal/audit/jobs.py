"""Scheduled audit work: chain what is left unchained, and sign an hourly checkpoint."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session


def sequence(session: Session, now: datetime) -> None:
    """Chain rows whose own commit did not (the sequencer was busy, or the process stopped)."""
    from portal.audit.service import sequence as run

    run(session.get_bind(), wait=True)


def checkpoint(session: Session, now: datetime) -> None:
    """Verify the log and sign, store and mail a checkpoint if it grew (raises if the log is broken)."""
    from portal.audit.checkpoint import write

    write(session, now)
