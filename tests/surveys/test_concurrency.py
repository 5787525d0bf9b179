"""Two submissions of one check-in at the same moment store one answer (PostgreSQL row locks)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.auth.service import principal_for
from surveys import service
from surveys.models import SurveyAssignment, SurveyResponse
from tests.surveys.conftest import MONDAY_0830, MOOD_OK

NOW = MONDAY_0830 + timedelta(minutes=5)


def test_simultaneous_double_submit_stores_one_answer(app, session, sv, db):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("row-lock behaviour is what PostgreSQL does; SQLite serialises writers anyway")
    env = sv.setup(grade=8)
    session.commit()
    me = principal_for(env["child"])
    aid = session.scalar(select(SurveyAssignment.id))
    first, second = Session(db.engine), Session(db.engine)
    results: dict[str, object] = {}
    try:
        results["first"] = service.submit(first, me, aid, MOOD_OK, NOW)  # holds the row lock, not yet committed

        def other():
            with app.app_context():
                results["second"] = service.submit(second, me, aid, MOOD_OK, NOW)
                second.commit()

        t = threading.Thread(target=other)
        t.start()
        t.join(timeout=1)
        assert t.is_alive()  # waiting for the first transaction's lock
        first.commit()
        t.join(timeout=10)
        assert not t.is_alive()
    finally:
        first.close()
        second.close()
    assert results["second"].duplicate
    assert session.scalar(select(func.count()).select_from(SurveyResponse)) == 1
