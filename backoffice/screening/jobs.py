"""Scheduled screening: the nightly run (registered with portal.scheduler)."""

from __future__ import annotations

import logging
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

TOKYO = ZoneInfo("Asia/Tokyo")
log = logging.getLogger(__name__)


def nightly(session: Session, now: datetime) -> None:
    """Run the active rule set as of today in Tokyo; nothing to do (and no error) before one is approved."""
    from backoffice.screening.service import active_rule_set, run_screening
    from portal.auth.principal import SYSTEM

    if active_rule_set(session) is None:
        log.info("screening.nightly: no active rule set yet; nothing to run")
        return
    run = run_screening(session, SYSTEM, trigger="nightly", as_of=now.astimezone(TOKYO).date(), now=now)
    log.info("screening.nightly: run %s, %s children, %s new flags, %s cleared", run.id, run.counts["children"],
             run.counts["new_flags"], run.counts["cleared"])
