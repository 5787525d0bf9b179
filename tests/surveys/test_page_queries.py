"""Pages query the database a constant number of times, whatever the number of rows."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import event, select

from portal.auth.service import principal_for
from portal.extensions import db
from surveys import scheduling, service, views
from surveys.models import SurveyAssignment
from tests.surveys.conftest import MONDAY_0830, MOOD_OK

NOW = MONDAY_0830 + timedelta(minutes=5)


@pytest.fixture(autouse=True)
def _clock(monkeypatch):
    monkeypatch.setattr(views, "clock", lambda: NOW)


@contextmanager
def counting():
    seen: list[str] = []

    def before(conn, cursor, statement, *a):
        seen.append(statement)

    engine = db.engine
    event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)


def _cost(client, url: str) -> int:
    client.get(url)  # warm: sign-in look-ups cached the same way for both sizes
    with counting() as seen:
        resp = client.get(url)
    assert resp.status_code == 200, url
    return len(seen)


def _answer(session, child, weather="4", note=None):
    a = session.scalar(
        select(SurveyAssignment).where(SurveyAssignment.child_id == child.id, SurveyAssignment.status == "open")
    )
    raw = {**MOOD_OK, "weather": weather}
    if note:
        raw["note"] = note
    return service.submit(session, principal_for(child), a.id, raw, NOW)


@pytest.mark.parametrize("url_kind", ["today", "alerts", "alerts_all"])
def test_staff_lists_cost_the_same_for_two_or_eight_children(session, sv, login, client, url_kind):
    from portal.people.models import Enrolment

    costs = []
    for n in (2, 8):
        env = sv.setup(grade=5)
        for _ in range(n - 1):
            sv.consented_child(env["cls"])
        scheduling.open_due(session, MONDAY_0830)
        ids = session.scalars(select(Enrolment.child_id).where(Enrolment.class_id == env["cls"].id)).all()
        for i, cid in enumerate(ids):
            child = session.get(type(env["child"]), cid)
            result = _answer(session, child, weather="1" if i % 2 else "4", note="メモ" if i % 3 == 0 else None)
            alert = service.raise_alert(session, cid, env["cls"].school_id, "talk_request", NOW, response_id=result.response.id)
            if i % 2:
                service.acknowledge(session, principal_for(env["counsellor"]), alert.id, "昼休みに話を聞いた", NOW)
        session.commit()
        login(env["counsellor"] if url_kind != "today" else env["teacher"], c=client)
        url = {"today": "/staff/checkins", "alerts": "/staff/alerts", "alerts_all": "/staff/alerts?all=1"}[url_kind]
        costs.append(_cost(client, url))
    assert costs[0] == costs[1]


def test_child_page_costs_the_same_for_one_or_six_weeks_of_answers(session, sv, login, client):
    costs = []
    for days in (1, 6):
        env = sv.setup(grade=5)
        child = env["child"]
        day = MONDAY_0830
        for _ in range(days):
            scheduling.open_due(session, day)
            a = session.scalar(select(SurveyAssignment).where(SurveyAssignment.child_id == child.id, SurveyAssignment.status == "open"))
            service.submit(session, principal_for(child), a.id, {**MOOD_OK, "weather": "1", "note": "メモ"}, day + timedelta(minutes=1))
            day += timedelta(days=1)
            while day.astimezone(scheduling.TOKYO).weekday() >= 5:
                day += timedelta(days=1)
        session.commit()
        login(env["counsellor"], c=client)
        costs.append(_cost(client, f"/staff/checkins/children/{child.id}"))
    assert costs[0] == costs[1]


def test_guardian_list_costs_the_same_for_one_or_three_children(session, sv, make, login, client, monkeypatch):
    from datetime import UTC, datetime, time

    from surveys.models import Frequency

    term_start = datetime(2026, 9, 1, 1, 0, tzinfo=UTC)
    monkeypatch.setattr(views, "clock", lambda: term_start)
    costs = []
    for n in (1, 3):
        _t, cls = make.teacher_with_class(grade=4)
        children = [sv.consented_child(cls) for _ in range(n)]
        sv.schedule(cls, "family", frequency=Frequency.termly, start=time(0, 0), end=time(23, 0), days_open=14)
        guardian = make.guardian(*children, locale="en")
        scheduling.open_due(session, term_start)
        session.commit()
        login(guardian, c=client)
        costs.append(_cost(client, "/family/questionnaires"))
    assert costs[0] == costs[1]
