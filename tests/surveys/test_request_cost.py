"""The check-in POST, end to end through Flask: a small, constant number of queries."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import event, select

from portal.extensions import db
from surveys import views
from surveys.models import SurveyAssignment, SurveyResponse
from tests.conftest import csrf_token_from
from tests.surveys.conftest import MONDAY_0830, MOOD_OK

NOW = MONDAY_0830 + timedelta(minutes=5)


def _statements(app, fn) -> list[str]:
    seen: list[str] = []

    def before(conn, cursor, statement, *a):
        seen.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", before)
    try:
        fn()
    finally:
        event.remove(engine, "before_cursor_execute", before)
    return seen


def _post_cost(app, session, sv, login, client, *, classmates: int) -> int:
    env = sv.setup(grade=8)
    for _ in range(classmates):
        sv.consented_child(env["cls"])
    session.commit()
    a = session.scalar(select(SurveyAssignment).where(SurveyAssignment.child_id == env["child"].id))
    login(env["child"], c=client)
    token = csrf_token_from(client.get(f"/student/checkins/{a.id}").get_data(as_text=True))
    seen = _statements(app, lambda: client.post(f"/student/checkins/{a.id}", data={**MOOD_OK, "csrf_token": token}))
    assert session.scalar(select(SurveyResponse.assignment_id).where(SurveyResponse.assignment_id == a.id)) == a.id
    return len(seen)


def test_checkin_post_uses_few_queries_whatever_the_class_size(app, session, sv, make, login, client, monkeypatch):
    monkeypatch.setattr(views, "clock", lambda: NOW)
    small = _post_cost(app, session, sv, login, client, classmates=0)
    large = _post_cost(app, session, sv, login, app.test_client(), classmates=25)
    # sign-in look-up, the assignment with its gate check, claim (UPDATE), answer (INSERT)
    assert small == large <= 5
