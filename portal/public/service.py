"""What the public, unauthenticated endpoints need (no personal data)."""

from __future__ import annotations

import logging

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)


def database_answers(session: Session) -> bool:
    """True if the database answers ``SELECT 1``; the session is left clean either way."""
    try:
        session.execute(text("SELECT 1"))
        return True
    except SQLAlchemyError as exc:
        log.warning("readiness check: database unavailable (%s)", type(exc).__name__)
        return False
    finally:
        session.rollback()
