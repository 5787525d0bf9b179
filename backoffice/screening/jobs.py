"""Scheduled screening: the nightly run (registered with portal.scheduler)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

TOKYO = ZoneInfo("Asia/Tokyo")


def nightly(session: Session, now: datetime) -> None:
    from backoffice.screening.service import run_screening
    from portal.auth.principal import SYSTEM

    run_screening(session, SYSTEM, trigger="nightly", as_of=now.astimezone(TOKYO).date(), now=now)
